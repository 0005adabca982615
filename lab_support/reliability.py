"""Reliability math for multi-step runs: why memoized per-step retries matter.

A run has ``n`` steps; each attempt of a step succeeds with probability ``p`` and costs
``cost``. Two ways to recover from a failed step:

* per-step retries with memoization (durable execution): only the failed step runs again,
  up to ``k`` more times; finished steps keep their stored output;
* whole-run retries without memoization (a plain job re-run): the run starts again from
  step 1, up to ``k`` more times, paying again for the steps that had already worked.

Everything here is a pure function; ``reliability_widget`` only draws them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from .display import ShownInCell


def _check(p: float, n: int, k: int, cost: float = 0.0) -> None:
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p (per-step success chance) must be in (0, 1], got {p}")
    if n < 1 or int(n) != n:
        raise ValueError(f"n (number of steps) must be a whole number >= 1, got {n}")
    if k < 0 or int(k) != k:
        raise ValueError(f"k (retries) must be a whole number >= 0, got {k}")
    if cost < 0:
        raise ValueError(f"cost must be >= 0, got {cost}")


def step_success(p: float, k: int) -> float:
    """Chance one step eventually succeeds with k retries: 1 - (1-p)^(k+1)."""
    _check(p, 1, k)
    return 1.0 - (1.0 - p) ** (k + 1)


def run_success_memoized(p: float, n: int, k: int) -> float:
    """Every step gets its own k retries: (1 - (1-p)^(k+1))^n."""
    _check(p, n, k)
    return step_success(p, k) ** n


def run_success_rerun(p: float, n: int, k: int) -> float:
    """The whole run is retried k times from the top: 1 - (1 - p^n)^(k+1)."""
    _check(p, n, k)
    return 1.0 - (1.0 - p ** n) ** (k + 1)


def expected_attempts(p: float, k: int) -> float:
    """Expected executions of one step allowed k retries: sum_{i=0..k} (1-p)^i."""
    _check(p, 1, k)
    return sum((1.0 - p) ** i for i in range(k + 1))


def expected_cost_memoized(p: float, n: int, k: int, cost: float) -> float:
    """Step j runs only if steps 1..j-1 succeeded; then it costs its expected attempts."""
    _check(p, n, k, cost)
    s = step_success(p, k)
    return cost * expected_attempts(p, k) * sum(s ** j for j in range(n))


def expected_cost_rerun(p: float, n: int, k: int, cost: float) -> float:
    """Each run attempt pays for steps until the first failure; attempts repeat while the
    whole run keeps failing, at most k+1 times."""
    _check(p, n, k, cost)
    per_attempt = cost * sum(p ** j for j in range(n))
    run_fail = 1.0 - p ** n
    return per_attempt * sum(run_fail ** i for i in range(k + 1))


@dataclass(frozen=True)
class Comparison:
    p: float
    n: int
    k: int
    cost: float
    no_retries: float
    memoized: float
    rerun: float
    cost_memoized: float
    cost_rerun: float

    def text(self) -> str:
        return (f"{self.n} steps at p={self.p:.3f}, {self.k} retries, ${self.cost:.3f}/step\n"
                f"  no retries:                 success {self.no_retries:.1%}\n"
                f"  per-step retries (memo):    success {self.memoized:.2%}, "
                f"expected cost ${self.cost_memoized:.3f}\n"
                f"  whole-run retries (no memo): success {self.rerun:.2%}, "
                f"expected cost ${self.cost_rerun:.3f}")


def compare(p: float, n: int, k: int, cost: float = 0.0) -> Comparison:
    _check(p, n, k, cost)
    return Comparison(p, n, k, cost, no_retries=p ** n,
                      memoized=run_success_memoized(p, n, k), rerun=run_success_rerun(p, n, k),
                      cost_memoized=expected_cost_memoized(p, n, k, cost),
                      cost_rerun=expected_cost_rerun(p, n, k, cost))


# One colour per strategy, the same in both plots.
STRATEGY_COLOURS = {"none": "#8c8c8c", "rerun": "#c44e52", "memo": "#55a868"}


def comparison_figure(p: float, n: int, k: int, cost: float, max_steps: int = 20):
    from matplotlib.figure import Figure

    steps = list(range(1, max(max_steps, n) + 1))
    fig = Figure(figsize=(9, 3.2))
    left, right = fig.subplots(1, 2)
    c = STRATEGY_COLOURS
    left.plot(steps, [p ** m for m in steps], color=c["none"], label="no retries")
    left.plot(steps, [run_success_rerun(p, m, k) for m in steps], color=c["rerun"],
              label=f"rerun whole run ×{k}")
    left.plot(steps, [run_success_memoized(p, m, k) for m in steps], color=c["memo"],
              label=f"per-step retries ×{k} (memo)")
    left.axvline(n, color="grey", linestyle=":")
    left.set(xlabel="steps in the run", ylabel="chance the run succeeds", ylim=(0, 1.02))
    left.legend(fontsize=8)
    right.plot(steps, [expected_cost_rerun(p, m, k, cost) for m in steps], color=c["rerun"],
               label="rerun whole run")
    right.plot(steps, [expected_cost_memoized(p, m, k, cost) for m in steps], color=c["memo"],
               label="per-step retries (memo)")
    right.axvline(n, color="grey", linestyle=":")
    right.set(xlabel="steps in the run", ylabel="expected cost ($)")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


class Shown(ShownInCell):
    """What ``lab.reliability`` returns: the numbers it already showed (echoing it in the
    same cell adds nothing; ``.comparison`` has the values)."""

    def __init__(self, comparison: Comparison) -> None:
        self.comparison = comparison

    def __getattr__(self, name):
        return getattr(self.comparison, name)

    def redisplay(self) -> None:
        print(self.comparison.text())


def reliability_widget(p: float = 0.95, n: int = 6, k: int = 3, cost: float = 0.05):
    """Sliders in JupyterLab; elsewhere the numbers and one static plot. The numbers and
    the plot live inside the widget and are redrawn in place when a slider moves."""
    from .display import figure_png, in_kernel, png_img_tag, show, show_figure

    first = compare(p, n, k, cost)
    if not in_kernel():
        print(first.text())
        return Shown(first)
    import ipywidgets as w

    sliders = {
        "p": w.FloatSlider(value=p, min=0.5, max=1.0, step=0.005, description="p (step ok)",
                           readout_format=".3f"),
        "n": w.IntSlider(value=n, min=1, max=30, description="n (steps)"),
        "k": w.IntSlider(value=k, min=0, max=10, description="k (retries)"),
        "cost": w.FloatSlider(value=cost, min=0.0, max=1.0, step=0.01, description="$ / step"),
    }
    numbers = w.HTML()
    out = w.Output()

    def redraw(*_):
        vals = {name: s.value for name, s in sliders.items()}
        numbers.value = f"<pre>{html.escape(compare(**vals).text())}</pre>"
        with out:
            out.clear_output(wait=True)
            show_figure(comparison_figure(**vals), alt="reliability comparison")

    for s in sliders.values():
        s.observe(redraw, names="value")
    redraw()
    box = w.VBox([*sliders.values(), numbers, out])
    static = png_img_tag(figure_png(comparison_figure(p, n, k, cost)), "reliability comparison")
    show(text=first.text(), html_text=f"<pre>{html.escape(first.text())}</pre>{static}",
         widget=box)
    shown = Shown(first)
    shown.mark_shown()
    return shown
