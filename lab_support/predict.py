"""PRIMM "Predict" prompts: commit to an answer and a confidence, then reveal.

Every answer (from the widget or from code) is appended to ``.lab/predictions.jsonl``;
``calibration`` compares how sure learners were with how often they were right.
"""

from __future__ import annotations


import html
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .display import ShownInCell

NUMERIC = "numeric"
DEFAULT_TOLERANCE = 0.05  # numeric answers within 5 % count as right


@dataclass(frozen=True)
class Outcome:
    id: str
    value: Any
    confidence: int
    correct: bool | None
    explain: str

    def text(self) -> str:
        verdict = {True: "right", False: "not quite", None: "recorded"}[self.correct]
        return f"[{self.id}] you said {self.value!r} (confidence {self.confidence}/5): {verdict}. {self.explain}"


def check_answer(value: Any, answer: Any, choices: Any, tolerance: float = DEFAULT_TOLERANCE) -> bool:
    if choices == NUMERIC:
        try:
            got, want = float(value), float(answer)
        except (TypeError, ValueError):
            return False
        return math.isclose(got, want, rel_tol=tolerance, abs_tol=1e-9)
    if isinstance(value, str) and isinstance(answer, str):
        return value.strip().casefold() == answer.strip().casefold()
    return value == answer


class Prediction(ShownInCell):
    def __init__(self, id: str, question: str, *, choices: list | str | None = None,
                 answer: Any = None, explain: str = "", store: Path,
                 tolerance: float = DEFAULT_TOLERANCE) -> None:
        if choices in (float, int, "number"):
            choices = NUMERIC
        if not id or not isinstance(id, str):
            raise ValueError("predict needs a short string id, e.g. 'c6-retry-count'")
        if isinstance(choices, list) and answer not in choices:
            raise ValueError(f"answer {answer!r} is not one of the choices {choices!r}")
        if choices not in (None, NUMERIC) and not isinstance(choices, list):
            raise ValueError("choices must be a list, 'numeric' or None (free text)")
        self.id, self.question, self.choices = id, question, choices
        self._answer, self.explain, self.store, self.tolerance = answer, explain, store, tolerance
        self.outcome: Outcome | None = None

    def answer(self, value: Any, confidence: int = 3, *, source: str = "code") -> Outcome:
        """Record an answer (graders and headless runs call this; the widget does too)."""
        if not isinstance(confidence, int) or not 1 <= confidence <= 5:
            raise ValueError(f"confidence must be a whole number 1-5, got {confidence!r}")
        if isinstance(self.choices, list) and value not in self.choices:
            raise ValueError(f"{value!r} is not one of {self.choices!r}")
        # An open question (no answer given) is recorded but not marked right or wrong.
        correct = (None if self._answer is None
                   else check_answer(value, self._answer, self.choices, self.tolerance))
        self.outcome = Outcome(self.id, value, confidence, correct, self.explain)
        self.store.parent.mkdir(parents=True, exist_ok=True)
        record = {"id": self.id, "question": self.question, "value": value,
                  "answer": self._answer, "confidence": confidence, "correct": correct,
                  "source": source, "ts": time.time()}
        with self.store.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
        return self.outcome

    # -- rendering ---------------------------------------------------------------------
    def fallback_html(self) -> str:
        q = html.escape(self.question)
        if isinstance(self.choices, list):
            opts = "".join(f"<li>{html.escape(str(c))}</li>" for c in self.choices)
            body = f"<ol type='a'>{opts}</ol>"
        elif self.choices == NUMERIC:
            body = "<p><i>Answer with a number.</i></p>"
        else:
            body = ""
        how = html.escape(f"lab.predictions[{self.id!r}].answer(value, confidence=1..5)")
        reveal = (f"<details><summary>Reveal</summary><p>Answer: {html.escape(str(self._answer))}"
                  f"</p><p>{html.escape(self.explain)}</p></details>")
        return (f"<div class='lab-predict'><b>Predict</b> <code>{html.escape(self.id)}</code>"
                f"<p>{q}</p>{body}<p>Confidence 1-5. From code: <code>{how}</code></p>{reveal}</div>")

    def text(self) -> str:
        lines = [f"Predict [{self.id}]: {self.question}"]
        if isinstance(self.choices, list):
            lines += [f"  ({chr(97 + i)}) {c}" for i, c in enumerate(self.choices)]
        lines.append(f"  answer from code: lab.predictions[{self.id!r}].answer(value, confidence)")
        return "\n".join(lines)

    def widget(self):
        import ipywidgets as w

        if isinstance(self.choices, list):
            pick = w.RadioButtons(options=self.choices, value=None, description="")
        elif self.choices == NUMERIC:
            pick = w.FloatText(description="answer")
        else:
            pick = w.Text(description="answer")
        confidence = w.IntSlider(value=3, min=1, max=5, description="confidence")
        button = w.Button(description="Reveal", button_style="info")
        out = w.Output()

        def reveal(_):
            with out:
                out.clear_output()
                if pick.value is None:
                    print("Pick an answer first.")
                    return
                print(self.answer(pick.value, confidence.value, source="widget").text())

        button.on_click(reveal)  # a callback: the cell never waits for the click
        return w.VBox([w.HTML(f"<b>Predict</b> <code>{html.escape(self.id)}</code>: "
                              f"{html.escape(self.question)}"), pick, confidence, button, out],
                      layout=w.Layout(border="1px solid #ccc", padding="6px"))

    def show(self) -> "Prediction":
        from .display import in_kernel, show

        show(text=self.text(), html_text=self.fallback_html(),
             widget=self.widget() if in_kernel() else None)
        self.mark_shown()
        return self

    def redisplay(self) -> None:
        self.show()


def load_records(store: Path) -> list[dict]:
    if not store.exists():
        return []
    records = []
    for n, line in enumerate(store.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                raise ValueError(f"{store}:{n} is not valid JSON: {exc}") from exc
    return records


def calibration_table(records: list[dict]):
    """Accuracy per confidence level, counting each prediction id's latest answer."""
    import pandas as pd

    latest = {r["id"]: r for r in records if r.get("correct") is not None}
    frame = pd.DataFrame(list(latest.values()), columns=["id", "confidence", "correct"])
    table = (frame.groupby("confidence")["correct"].agg(["count", "mean"])
             .reindex(range(1, 6)).rename(columns={"count": "answers", "mean": "accuracy"}))
    table["answers"] = table["answers"].fillna(0).astype(int)
    return table


def calibration_figure(table):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2))
    ax = fig.add_subplot()
    levels = list(table.index)
    ax.bar(levels, table["accuracy"].fillna(0), color="#4c72b0", label="your accuracy")
    ax.plot(levels, [c / 5 for c in levels], "k--", label="calibrated (confidence/5)")
    for level, n in zip(levels, table["answers"], strict=True):
        ax.annotate(f"n={n}", (level, 0.02), ha="center", fontsize=8, color="white")
    ax.set(xlabel="confidence", ylabel="fraction right", ylim=(0, 1.05), xticks=levels)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
