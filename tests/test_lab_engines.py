"""Which engine lab.start picks, tested with a fake environment, PATH and probe."""

import pytest

from lab_support.engines import (
    DEFAULT_DEV_URL,
    EngineUnavailable,
    dev_url_from_env,
    pick_engine,
    project_root,
)


def no_binary(name):
    return None


def answering(*urls):
    return lambda url: {"version": "dev-1.0"} if url in urls else None


def test_inngest_dev_url_that_answers_is_used():
    choice = pick_engine(env={"INNGEST_DEV": "http://127.0.0.1:9999/"}, which=no_binary,
                         probe_fn=answering("http://127.0.0.1:9999"))
    assert (choice.mode, choice.url) == ("url", "http://127.0.0.1:9999")


def test_inngest_dev_flag_means_the_default_port():
    assert dev_url_from_env("1") == DEFAULT_DEV_URL
    assert dev_url_from_env("true") == DEFAULT_DEV_URL
    assert dev_url_from_env("0") is None and dev_url_from_env("") is None
    choice = pick_engine(env={"INNGEST_DEV": "1"}, which=no_binary,
                         probe_fn=answering(DEFAULT_DEV_URL))
    assert choice.url == DEFAULT_DEV_URL


def test_unreachable_inngest_dev_fails_fast_with_advice():
    with pytest.raises(EngineUnavailable, match="unset it"):
        pick_engine(env={"INNGEST_DEV": "http://127.0.0.1:1"}, which=lambda n: "/usr/bin/inngest",
                    probe_fn=answering())


def test_garbage_inngest_dev_is_explained():
    with pytest.raises(EngineUnavailable, match="neither a URL"):
        pick_engine(env={"INNGEST_DEV": "yes please"}, which=no_binary, probe_fn=answering())


def test_engine_assigned_by_the_grader_wins_over_starting_one():
    env = {"LAB_ENGINE_URL": "http://127.0.0.1:7777/", "INNGEST_DEV": "http://127.0.0.1:9999"}
    choice = pick_engine(env=env, which=no_binary, probe_fn=answering("http://127.0.0.1:7777"))
    assert (choice.mode, choice.url) == ("url", "http://127.0.0.1:7777")
    assert pick_engine("embedded", env=env, which=no_binary,
                       probe_fn=answering("http://127.0.0.1:7777")).url == "http://127.0.0.1:7777"
    with pytest.raises(EngineUnavailable, match="LAB_ENGINE_URL"):
        pick_engine(env={"LAB_ENGINE_URL": "http://127.0.0.1:1"}, which=no_binary,
                    probe_fn=answering())


def test_binary_on_path_is_next():
    choice = pick_engine(env={}, which=lambda n: "/opt/bin/inngest" if n == "inngest" else None,
                         probe_fn=answering())
    assert (choice.mode, choice.binary) == ("binary", "/opt/bin/inngest")


def test_embedded_is_the_fallback_and_can_be_forced():
    assert pick_engine(env={}, which=no_binary, probe_fn=answering()).mode == "embedded"
    forced = pick_engine("embedded", env={"INNGEST_DEV": "http://x:1"},
                         which=lambda n: "/bin/inngest", probe_fn=answering())
    assert forced.mode == "embedded"


def test_real_without_a_server_says_how_to_get_one():
    with pytest.raises(EngineUnavailable, match="inngest-cli"):
        pick_engine("real", env={}, which=no_binary, probe_fn=answering())


def test_explicit_url_is_probed():
    assert pick_engine("http://h:1", env={}, which=no_binary,
                       probe_fn=answering("http://h:1")).mode == "url"
    with pytest.raises(EngineUnavailable, match="engine='embedded'"):
        pick_engine("http://h:2", env={}, which=no_binary, probe_fn=answering())
    with pytest.raises(ValueError, match="engine must be"):
        pick_engine("docker", env={}, which=no_binary, probe_fn=answering())


def test_project_root_is_found_upward(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    deep = tmp_path / "notebooks" / "part2"
    deep.mkdir(parents=True)
    assert project_root(deep) == tmp_path.resolve()
    lonely = tmp_path.parent / f"{tmp_path.name}-alone"
    lonely.mkdir()
    assert project_root(lonely) == lonely.resolve()
