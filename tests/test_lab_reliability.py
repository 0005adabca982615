"""Reliability math behind lab.reliability(): pure functions, checked against hand math."""

import math

import pytest

from lab_support import reliability as r


def test_course_number_six_steps_at_95_percent():
    # The course's claim: six steps at 95 % each fail about 26 % of the time.
    assert r.compare(0.95, 6, 0).no_retries == pytest.approx(0.735, abs=5e-4)
    assert 1 - 0.95 ** 6 == pytest.approx(0.265, abs=5e-4)


def test_no_retries_is_the_same_for_both_strategies():
    for p, n in [(0.9, 3), (0.99, 10), (1.0, 4)]:
        assert r.run_success_memoized(p, n, 0) == pytest.approx(p ** n)
        assert r.run_success_rerun(p, n, 0) == pytest.approx(p ** n)


def test_per_step_retries_beat_whole_run_retries():
    for k in (1, 2, 3):
        assert r.run_success_memoized(0.95, 6, k) > r.run_success_rerun(0.95, 6, k)
    assert r.run_success_memoized(0.95, 6, 1) == pytest.approx((1 - 0.05 ** 2) ** 6)
    assert r.run_success_rerun(0.95, 6, 1) == pytest.approx(1 - (1 - 0.95 ** 6) ** 2)


def test_expected_attempts_is_a_truncated_geometric_sum():
    assert r.expected_attempts(0.5, 0) == 1
    assert r.expected_attempts(0.5, 2) == pytest.approx(1 + 0.5 + 0.25)
    assert r.expected_attempts(1.0, 5) == 1


def test_costs_with_certain_success_are_just_the_steps():
    assert r.expected_cost_memoized(1.0, 4, 3, 0.25) == pytest.approx(1.0)
    assert r.expected_cost_rerun(1.0, 4, 3, 0.25) == pytest.approx(1.0)


def test_two_step_costs_by_hand():
    p, c = 0.5, 1.0
    # memoized, k=1: step1 costs 1.5 expected; reach step2 with 0.75; step2 costs 1.5.
    assert r.expected_cost_memoized(p, 2, 1, c) == pytest.approx(1.5 + 0.75 * 1.5)
    # rerun, k=1: one attempt costs 1 + 0.5; a second attempt happens with chance 0.75.
    assert r.expected_cost_rerun(p, 2, 1, c) == pytest.approx(1.5 * (1 + 0.75))


def test_memoization_is_cheaper_when_failures_happen():
    assert r.expected_cost_memoized(0.9, 6, 3, 0.2) < r.expected_cost_rerun(0.9, 6, 3, 0.2)


@pytest.mark.parametrize("args", [(0, 3, 1), (1.2, 3, 1), (0.9, 0, 1), (0.9, 2.5, 1),
                                  (0.9, 3, -1)])
def test_bad_input_is_rejected_with_a_message(args):
    with pytest.raises(ValueError, match="must be"):
        r.run_success_memoized(*args)


def test_comparison_text_and_figure():
    comp = r.compare(0.95, 6, 2, 0.05)
    assert "per-step retries" in comp.text()
    fig = r.comparison_figure(0.95, 6, 2, 0.05)
    assert len(fig.axes) == 2
    assert not math.isnan(comp.cost_rerun)


def test_widget_outside_a_kernel_prints_numbers(capsys):
    result = r.reliability_widget(0.95, 6, 0, 0.1)
    assert result.no_retries == pytest.approx(0.95 ** 6)
    assert "no retries" in capsys.readouterr().out


def test_both_plots_use_one_colour_per_strategy():
    fig = r.comparison_figure(0.95, 6, 2, 0.05)
    left, right = fig.axes
    colour = {line.get_label(): line.get_color() for ax in (left, right) for line in ax.get_lines()
              if not line.get_label().startswith("_")}
    assert colour["rerun whole run ×2"] == colour["rerun whole run"]
    assert colour["per-step retries ×2 (memo)"] == colour["per-step retries (memo)"]
    assert len(set(colour.values())) == 3


def test_the_returned_numbers_do_not_echo_under_the_widget(capsys, monkeypatch):
    import lab_support.display as display

    shown = r.reliability_widget(0.9, 4, 1, 0.1)
    assert isinstance(shown, r.ShownInCell)
    assert shown.memoized == pytest.approx(r.run_success_memoized(0.9, 4, 1))
    monkeypatch.setattr(display, "cell_number", lambda: 7)
    shown.mark_shown()           # shown by cell 7 ...
    capsys.readouterr()
    shown._ipython_display_()    # ... so echoing it as cell 7's last expression adds nothing
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(display, "cell_number", lambda: 8)
    shown._ipython_display_()    # a later cell shows the numbers again
    assert "per-step retries" in capsys.readouterr().out
