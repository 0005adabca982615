"""lab.check: records pass/fail, points and hints; never stops the notebook unless strict."""

from __future__ import annotations

import pytest

from lab_support import checks
from lab_support.checks import CHECK_MIMETYPE, check, is_hidden_check_cell
from lab_support.client import NotOnRealServer


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    checks.reset()
    monkeypatch.delenv(checks.STRICT_ENV, raising=False)
    yield
    checks.reset()


def test_decorator_runs_at_once_and_records_pass():
    calls = []

    @check("adds up", points=3)
    def result():
        calls.append(1)
        assert 1 + 1 == 2

    assert calls == [1]
    assert result.passed and result.points == 3 and result.max == 3
    assert [(r.name, r.passed, r.points) for r in checks.results()] == [("adds up", True, 3)]


def test_failing_decorator_is_recorded_with_hint_and_does_not_raise(capsys):
    @check("wrong sum", points=2, hint="Add, don't multiply.")
    def result():
        assert 2 * 3 == 5, "expected 5"

    assert not result.passed and result.points == 0 and result.max == 2
    assert result.message.startswith("AssertionError: expected 5")
    out = capsys.readouterr().out
    assert "FAIL" in out and "Add, don't multiply." in out
    assert checks.results()[0].to_record()["hint"] == "Add, don't multiply."


def test_a_lab_only_feature_on_a_real_server_is_skipped_not_failed(capsys, monkeypatch):
    monkeypatch.setenv(checks.STRICT_ENV, "1")  # a skip is not a failure: nothing re-raised
    with check("the clock jumped", points=2) as ctx:
        raise NotOnRealServer("lab.clock exists only in the lab's embedded engine")
    record = ctx.result.to_record()
    assert record["skipped"] is True and record["passed"] is False
    assert (record["points"], record["max"]) == (0, 0)
    assert "embedded engine" in record["message"]
    assert "[SKIP] the clock jumped" in capsys.readouterr().out
    assert checks.score() == (0, 0)


def test_bare_assert_message_names_the_line():
    # Compiled here, not in this module, so pytest's assert rewriting leaves it bare.
    scope: dict = {}
    exec(compile("def body():\n    value = 4\n    assert value == 5\n", "<cell>", "exec"), scope)
    result = check("bare")(scope["body"])
    assert result.message.startswith("assertion failed")


def test_context_manager_swallows_failure_and_keeps_going():
    with check("ctx fails", points=1, hint="h") as c:
        raise ValueError("boom")
    with check("ctx passes", points=2) as ok:
        pass
    assert c.result.message == "ValueError: boom" and not c.result.passed
    assert ok.result.passed
    assert checks.score() == (2, 3)


def test_strict_mode_reraises_after_recording(monkeypatch):
    monkeypatch.setenv(checks.STRICT_ENV, "1")
    with pytest.raises(AssertionError):
        with check("strict"):
            assert False, "nope"
    with pytest.raises(ZeroDivisionError):
        check("strict deco", strict=True)(lambda: 1 / 0)
    assert [r.passed for r in checks.results()] == [False, False]


def test_keyboard_interrupt_is_not_swallowed():
    with pytest.raises(KeyboardInterrupt):
        with check("interrupted"):
            raise KeyboardInterrupt
    assert checks.results() == []


def test_async_check_body_runs():
    async def body():
        assert True

    assert check("async")(body).passed


def test_score_uses_latest_result_per_name():
    check("same", points=2)(lambda: 1 / 0)
    check("same", points=2)(lambda: None)
    assert checks.score() == (2, 2)


@pytest.mark.parametrize("kwargs, error", [
    ({"name": ""}, ValueError), ({"name": "x", "points": -1}, ValueError),
    ({"name": "x", "points": "2"}, ValueError), ({"name": "x", "hint": 3}, TypeError),
])
def test_bad_arguments_get_clear_errors(kwargs, error):
    with pytest.raises(error):
        check(**kwargs)


def test_mimebundle_carries_machine_record():
    result = check("bundle", hint="h")(lambda: None)
    bundle = result._repr_mimebundle_()
    assert bundle[CHECK_MIMETYPE]["name"] == "bundle"
    assert "passed" in bundle["text/html"] and "[PASS] bundle" in bundle["text/plain"]


def test_hidden_check_cell_detection():
    assert is_hidden_check_cell({"cell_type": "code", "source": "\n# HIDDEN CHECK\nassert x"})
    assert is_hidden_check_cell({"cell_type": "code", "source": "x", "metadata": {"tags": ["hidden-check"]}})
    assert not is_hidden_check_cell({"cell_type": "code", "source": "x = 1\n# HIDDEN CHECK"})
    assert not is_hidden_check_cell({"cell_type": "markdown", "source": "# HIDDEN CHECK"})
