"""What a Worker costs per month: Inngest executions per plan (with overage) plus model tokens,
from what the lab measured. Pure functions; ``cost_widget`` only draws them.

Inngest bills **executions**: one per function run and one per step execution, retries
included (a run with five steps that all succeed at once is six). So, per run:

    executions_per_run = 1 + steps_per_run × (1 + failure_rate)

where ``failure_rate`` is the share of step attempts that fail and are retried once. From a
measured population (``lab.executions(...)``: ``.runs``, ``.steps``, ``.attempts``,
``.executions``) it is ``executions / runs`` directly. Per month (30 days):
``executions = runs_per_day × 30 × executions_per_run``; the plan's base price covers its
included executions, and each further million (or part of one) costs the plan's overage rate.
Hobby has no overage: above its allowance the volume needs another plan. Model cost is
``runs × model_calls_per_run × tokens_per_call / 1000 × price_per_1k_tokens``.

Plans, allowances and prices: ``PLANS``, with sources in ``docs/plan-limits.md``. Prices move;
check inngest.com/pricing before quoting one.

``retry_waste`` is memoization's price tag (course Concept 7): given the units of work a
wrapped and an unwrapped version of a function really executed, in a clean run and in a run
whose agent step was retried once, what not wrapping costs per 1,000 runs.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

DAYS_PER_MONTH = 30
LIMITS_URL = "https://www.inngest.com/docs/durable-execution/limits"
PRICING_NOTE = "course figures (May 2026); inngest.com/pricing has current rates"


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    base_usd: float | None            # None: priced by sales
    included_executions: int | None   # per month; None: custom
    overage_usd_per_million: float | None  # None: no overage (a hard ceiling) or custom
    concurrent_steps: int | None

    @property
    def priced(self) -> bool:
        return self.base_usd is not None


PLANS: dict[str, Plan] = {
    "hobby": Plan("hobby", "Hobby (free)", 0.0, 50_000, None, 5),
    "pro": Plan("pro", "Pro", 75.0, 1_000_000, 50.0, 100),
    "business": Plan("business", "Business", None, 10_000_000, None, 500),
    "enterprise": Plan("enterprise", "Enterprise", None, None, None, None),
}


def plan(key: str) -> Plan:
    if key not in PLANS:
        raise ValueError(f"plan must be one of {list(PLANS)}, got {key!r}")
    return PLANS[key]


def _number(name: str, value, low: float = 0.0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
            or value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise ValueError(f"{name} must be a number {bounds}, got {value!r}")
    return float(value)


def executions_per_run(steps_per_run: float, failure_rate: float = 0.0) -> float:
    """1 for the run + one per step attempt (``failure_rate`` of step attempts retried once)."""
    steps = _number("steps_per_run", steps_per_run)
    rate = _number("failure_rate", failure_rate, 0.0, 1.0)
    return 1.0 + steps * (1.0 + rate)


@dataclass(frozen=True)
class MonthlyCost:
    plan: Plan
    runs_per_month: float
    executions: float
    base_usd: float | None
    overage_usd: float | None
    model_usd: float
    fits: bool          # the plan can bill this volume (Hobby: within its allowance)
    note: str = ""

    @property
    def inngest_usd(self) -> float | None:
        if self.base_usd is None:
            return None
        return self.base_usd + (self.overage_usd or 0.0)

    @property
    def total_usd(self) -> float | None:
        inngest = self.inngest_usd
        return None if inngest is None or not self.fits else inngest + self.model_usd

    def __repr__(self) -> str:
        return self.text()

    def text(self) -> str:
        if self.total_usd is None:
            return (f"{self.plan.name}: {self.executions:,.0f} executions/month; "
                    f"{self.note or 'priced by sales'}; model ${self.model_usd:,.2f}")
        return (f"{self.plan.name}: {self.executions:,.0f} executions/month → Inngest "
                f"${self.inngest_usd:,.2f} (base ${self.base_usd:,.2f} + overage "
                f"${self.overage_usd or 0:,.2f}) + model ${self.model_usd:,.2f} = "
                f"${self.total_usd:,.2f}")


def monthly_cost(*, runs_per_day: float, executions_per_run: float, plan_key: str = "pro",
                 model_calls_per_run: float = 0.0, tokens_per_call: float = 0.0,
                 price_per_1k_tokens: float = 0.0, days: int = DAYS_PER_MONTH) -> MonthlyCost:
    """One plan's monthly bill for a volume (see the module docstring for the model)."""
    chosen = plan(plan_key)
    runs = _number("runs_per_day", runs_per_day) * days
    executions = runs * _number("executions_per_run", executions_per_run, 1.0)
    model_usd = (runs * _number("model_calls_per_run", model_calls_per_run)
                 * _number("tokens_per_call", tokens_per_call) / 1000.0
                 * _number("price_per_1k_tokens", price_per_1k_tokens))
    included = chosen.included_executions
    if not chosen.priced:
        return MonthlyCost(chosen, runs, executions, None, None, model_usd, True,
                           "priced by sales (no public price)")
    over = max(0.0, executions - included)
    if over and chosen.overage_usd_per_million is None:
        return MonthlyCost(chosen, runs, executions, chosen.base_usd, None, model_usd, False,
                           f"over the {included:,} executions {chosen.name} includes, a "
                           "ceiling it cannot exceed: this volume needs a paid plan")
    overage = math.ceil(over / 1_000_000) * (chosen.overage_usd_per_million or 0.0)
    return MonthlyCost(chosen, runs, executions, chosen.base_usd, overage, model_usd, True)


def cost_by_plan(**kwargs) -> list[MonthlyCost]:
    """``monthly_cost`` for every plan (same arguments, without ``plan_key``)."""
    return [monthly_cost(plan_key=key, **kwargs) for key in PLANS]


def cheapest(costs: list[MonthlyCost]) -> MonthlyCost | None:
    billable = [c for c in costs if c.total_usd is not None]
    return min(billable, key=lambda c: c.total_usd) if billable else None


# ---------------------------------------------------------------------- measured inputs

def _field(source, name: str):
    value = source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)
    if value is None:
        raise ValueError(f"measured executions need '{name}' (lab.executions(...) has it)")
    return value


@dataclass(frozen=True)
class Measured:
    """Per-run figures from a measured population of runs and model calls."""

    runs: int
    steps_per_run: float
    failure_rate: float
    executions_per_run: float
    model_calls_per_run: float = 0.0
    tokens_per_call: float = 0.0
    notes: list[str] = field(default_factory=list)


def measured(executions=None, tokens=None) -> Measured | None:
    """Read ``lab.executions(...)`` (attributes or keys ``runs``, ``steps``, ``attempts``,
    ``executions``) and ``lab.model.usage()`` (``ok``, ``tokens_in``, ``tokens_out``), or a
    plain number of tokens per call. None when nothing was measured (or no run yet)."""
    if executions is None:
        return None
    runs = int(_field(executions, "runs"))
    if runs < 1:
        return None
    steps, attempts = float(_field(executions, "steps")), float(_field(executions, "attempts"))
    total = float(_field(executions, "executions"))
    calls, per_call, notes = 0.0, 0.0, []
    if isinstance(tokens, (int, float)) and not isinstance(tokens, bool):
        calls, per_call = 1.0, float(tokens)
    elif tokens is not None:
        answered = float(_field(tokens, "ok"))
        used = float(_field(tokens, "tokens_in")) + float(_field(tokens, "tokens_out"))
        calls = answered / runs
        per_call = used / answered if answered else 0.0
        notes.append(f"{answered:.0f} model calls answered for {runs} runs")
    return Measured(runs=runs, steps_per_run=steps / runs,
                    failure_rate=(attempts - steps) / steps if steps else 0.0,
                    executions_per_run=total / runs, model_calls_per_run=calls,
                    tokens_per_call=per_call, notes=notes)


# ---------------------------------------------------------------------- memoization's price

def run_cost(executed: Mapping[str, int], unit_usd: Mapping[str, float]) -> float:
    """What one run paid: how often each unit of work executed × its price."""
    unknown = set(executed) - set(unit_usd)
    if unknown:
        raise ValueError(f"no price for unit(s) {sorted(unknown)}")
    return sum(count * unit_usd[unit] for unit, count in executed.items())


@dataclass(frozen=True)
class Waste:
    """What not wrapping costs per ``volume`` runs at ``failure_rate`` (one retry each)."""

    volume: int
    failure_rate: float
    course_model_usd: float    # every unwrapped unit paid again per retry
    retry_usd: float           # measured: what retries re-ran, beyond the retried step
    total_usd: float           # measured: every re-entry's re-run, retried or not
    repaid_per_retry: dict

    def text(self) -> str:
        return (f"per {self.volume:,} runs at {self.failure_rate:.0%} retried once: "
                f"course model ${self.course_model_usd:.2f} (every unwrapped unit again per "
                f"retry); measured: retries re-ran ${self.retry_usd:.2f} of work, and "
                f"re-entries in all runs ${self.total_usd:.2f}")


def retry_waste(*, unit_usd: Mapping[str, float], unwrapped_units: set[str] | list[str],
                wrapped_clean: Mapping[str, int], wrapped_retried: Mapping[str, int],
                unwrapped_clean: Mapping[str, int], unwrapped_retried: Mapping[str, int],
                failure_rate: float, volume: int = 1000) -> Waste:
    """Compare a wrapped and an unwrapped version of one function from real runs.

    ``*_clean`` / ``*_retried``: executions per unit in a run without failures and in a run
    whose agent step failed once and was retried. ``unwrapped_units``: the units the unwrapped
    version runs outside ``step.run`` (its trace has no step for them).
    """
    rate = _number("failure_rate", failure_rate, 0.0, 1.0)
    course = volume * rate * sum(unit_usd[u] for u in unwrapped_units)
    w_clean, w_retried = run_cost(wrapped_clean, unit_usd), run_cost(wrapped_retried, unit_usd)
    u_clean = run_cost(unwrapped_clean, unit_usd)
    u_retried = run_cost(unwrapped_retried, unit_usd)
    retry = volume * rate * ((u_retried - u_clean) - (w_retried - w_clean))
    total = volume * ((1 - rate) * (u_clean - w_clean) + rate * (u_retried - w_retried))
    repaid = {u: unwrapped_retried.get(u, 0) - unwrapped_clean.get(u, 0)
              - (wrapped_retried.get(u, 0) - wrapped_clean.get(u, 0)) for u in unit_usd}
    return Waste(volume, rate, round(course, 6), round(retry, 6), round(total, 6), repaid)


# ---------------------------------------------------------------------- the widget

def cost_figure(*, runs_per_day: float, executions_per_run: float, model_calls_per_run: float,
                tokens_per_call: float, price_per_1k_tokens: float):
    """Monthly total per priced plan against volume, plan ceilings as dotted lines."""
    from matplotlib.figure import Figure

    top = max(runs_per_day * 4, 100.0)
    volumes = [top * i / 200 for i in range(201)]
    fig = Figure(figsize=(9, 3.6))
    ax = fig.subplots()
    for key, chosen in PLANS.items():
        if not chosen.priced:
            continue
        points = [monthly_cost(runs_per_day=v, executions_per_run=executions_per_run,
                               plan_key=key, model_calls_per_run=model_calls_per_run,
                               tokens_per_call=tokens_per_call,
                               price_per_1k_tokens=price_per_1k_tokens).total_usd
                  for v in volumes]
        ax.plot(volumes, [p if p is not None else float("nan") for p in points],
                label=chosen.name)
    for chosen in PLANS.values():
        if chosen.included_executions:
            ceiling = chosen.included_executions / (DAYS_PER_MONTH * executions_per_run)
            if ceiling <= top:
                ax.axvline(ceiling, color="grey", linestyle=":")
                ax.annotate(f"{chosen.name} allowance", (ceiling, 0), rotation=90,
                            fontsize=7, va="bottom", ha="right")
    ax.axvline(runs_per_day, color="black", linewidth=0.8)
    ax.set(xlabel="runs per day", ylabel="monthly cost (USD, Inngest + model)", xlim=(0, top))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _report(values: dict) -> str:
    costs = cost_by_plan(**values)
    best = cheapest(costs)
    lines = [f"{values['runs_per_day']:,.0f} runs/day × {values['executions_per_run']:.2f} "
             f"executions/run; {values['model_calls_per_run']:.2f} model calls/run × "
             f"{values['tokens_per_call']:,.0f} tokens at ${values['price_per_1k_tokens']:.4f}"
             "/1k tokens"]
    lines += ["  " + c.text() for c in costs]
    if best is not None:
        lines.append(f"  cheapest priced plan: {best.plan.name} (${best.total_usd:,.2f}/month)")
    lines.append(f"  prices: {PRICING_NOTE}")
    return "\n".join(lines)


def cost_widget(executions=None, tokens=None, *, runs_per_day: float = 1000.0,
                failure_rate: float | None = None, steps_per_run: float | None = None,
                tokens_per_call: float | None = None, model_calls_per_run: float | None = None,
                price_per_1k_tokens: float = 0.005, plan_key: str = "pro"):
    """Sliders in JupyterLab (volume, failure rate, steps, tokens, price, plan); elsewhere the
    numbers, an HTML table and one static plot. Starts from the measured figures."""
    from .display import figure_png, in_kernel, png_img_tag, show, show_figure

    found = measured(executions, tokens)
    steps = steps_per_run if steps_per_run is not None else (found.steps_per_run if found else 5)
    rate = failure_rate if failure_rate is not None else (found.failure_rate if found else 0.0)
    calls = model_calls_per_run if model_calls_per_run is not None else (
        found.model_calls_per_run if found and found.model_calls_per_run else 1.0)
    per_call = tokens_per_call if tokens_per_call is not None else (
        found.tokens_per_call if found and found.tokens_per_call else 3000.0)
    plan(plan_key)

    def values(runs, rate_, steps_, per_call_, price):
        per_run = (found.executions_per_run if found and rate_ == found.failure_rate
                   and steps_ == found.steps_per_run else executions_per_run(steps_, rate_))
        return {"runs_per_day": runs, "executions_per_run": per_run,
                "model_calls_per_run": calls, "tokens_per_call": per_call_,
                "price_per_1k_tokens": price}

    first = values(runs_per_day, rate, steps, per_call, price_per_1k_tokens)
    text = _report(first)
    if found is not None:
        text = (f"measured: {found.runs} runs, {found.steps_per_run:.2f} steps/run, "
                f"{found.failure_rate:.1%} of step attempts retried, "
                f"{found.executions_per_run:.2f} executions/run\n") + text
    chosen = monthly_cost(plan_key=plan_key, **first)
    if not in_kernel():
        print(text)
        return chosen
    import ipywidgets as w

    sliders = {
        "runs": w.FloatLogSlider(value=max(runs_per_day, 1), base=10, min=0, max=6,
                                 description="runs / day"),
        "rate": w.FloatSlider(value=rate, min=0, max=1, step=0.01, description="failure rate"),
        "steps": w.FloatSlider(value=steps, min=0, max=30, step=0.5, description="steps / run"),
        "per_call": w.FloatSlider(value=per_call, min=0, max=20000, step=100,
                                  description="tokens / call"),
        "price": w.FloatSlider(value=price_per_1k_tokens, min=0, max=0.1, step=0.0005,
                               readout_format=".4f", description="$ / 1k tokens"),
        "plan": w.Dropdown(options=list(PLANS), value=plan_key, description="plan"),
    }
    out = w.Output()

    def redraw(*_):
        vals = values(sliders["runs"].value, sliders["rate"].value, sliders["steps"].value,
                      sliders["per_call"].value, sliders["price"].value)
        with out:
            out.clear_output(wait=True)
            print(monthly_cost(plan_key=sliders["plan"].value, **vals).text())
            print(_report(vals))
            show_figure(cost_figure(**vals), alt="monthly cost against volume")

    for s in sliders.values():
        s.observe(redraw, names="value")
    redraw()
    static = png_img_tag(figure_png(cost_figure(**first)), "monthly cost against volume")
    rows = "".join(f"<tr><td>{c.plan.name}</td><td>{c.executions:,.0f}</td><td>"
                   + (f"${c.total_usd:,.2f}" if c.total_usd is not None
                      else html.escape(c.note))
                   + "</td></tr>" for c in cost_by_plan(**first))
    table = ("<table><tr><th>plan</th><th>executions/month</th><th>monthly total</th></tr>"
             f"{rows}</table>")
    show(text=text, html_text=f"<pre>{html.escape(text)}</pre>{table}{static}",
         widget=w.VBox([*sliders.values(), out]))
    return chosen
