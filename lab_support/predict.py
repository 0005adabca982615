"""PRIMM "Predict" prompts: commit to an answer and a confidence, then reveal.

The **first** committed answer to a prediction id is the one that counts: it is appended to
``<state dir>/predictions.jsonl`` (``.lab/`` for a learner; the tests set
``LAB_STATE_DIR`` to a folder of their own), the widget locks after Reveal, and showing the
same prediction again (a re-run cell, a new kernel) shows that first answer, locked, with the
explanation. ``calibration`` compares how sure learners were with how often they were right.

Question, choices and explanation are short Markdown (``*real*``, backticks), rendered as
HTML in the widget and in the saved notebook's fallback.
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


def md_inline(text: Any) -> str:
    """Inline Markdown → HTML (emphasis, code, links); raw HTML in the text is escaped."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).renderInline(str(text))


@dataclass(frozen=True)
class Outcome:
    id: str
    value: Any
    confidence: int
    correct: bool | None
    explain: str
    earlier: bool = False  # True when this is an answer committed before (a re-shown widget)

    @property
    def verdict(self) -> str:
        return {True: "right", False: "not quite", None: "recorded"}[self.correct]

    def text(self) -> str:
        when = " earlier" if self.earlier else ""
        return (f"[{self.id}] you said{when} {self.value!r} (confidence {self.confidence}/5): "
                f"{self.verdict}. {self.explain}").rstrip()

    def html(self, answer: Any = None) -> str:
        colour = {True: "#1a7f37", False: "#cf222e", None: "#57606a"}[self.correct]
        when = " earlier" if self.earlier else ""
        right = ("" if self.correct or answer is None
                 else f" The expected answer: <b>{md_inline(answer)}</b>.")
        return (f"<div><b style='color:{colour}'>{self.verdict}</b>: you said{when} "
                f"<b>{md_inline(self.value)}</b> (confidence {self.confidence}/5).{right}</div>"
                f"<div>{md_inline(self.explain)}</div>"
                "<div style='color:#57606a;font-size:90%'>Your first answer is the one that "
                "counts; this prediction is now locked.</div>")


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
                 tolerance: float = DEFAULT_TOLERANCE, notebook: str | None = None) -> None:
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
        self.notebook = notebook
        first = first_answer(store, id)
        self.outcome: Outcome | None = None if first is None else Outcome(
            id, first.get("value"), int(first.get("confidence") or 3), first.get("correct"),
            explain, earlier=True)

    @property
    def locked(self) -> bool:
        return self.outcome is not None

    def answer(self, value: Any, confidence: int = 3, *, source: str = "code") -> Outcome:
        """Commit an answer (graders and headless runs call this; the widget does too).
        Only the first answer counts: later calls return that first outcome unchanged."""
        if self.outcome is not None:
            return self.outcome
        if not isinstance(confidence, int) or isinstance(confidence, bool) \
                or not 1 <= confidence <= 5:
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
                  "source": source, "notebook": self.notebook, "ts": time.time()}
        with self.store.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
        return self.outcome

    # -- rendering ---------------------------------------------------------------------
    def _head_html(self) -> str:
        return (f"<b>Predict</b> <code>{html.escape(self.id)}</code>: "
                f"{md_inline(self.question)}")

    def fallback_html(self) -> str:
        if isinstance(self.choices, list):
            opts = "".join(f"<li>{md_inline(c)}</li>" for c in self.choices)
            body = f"<ol type='a'>{opts}</ol>"
        elif self.choices == NUMERIC:
            body = "<p><i>Answer with a number.</i></p>"
        else:
            body = ""
        if self.outcome is not None:
            return (f"<div class='lab-predict'>{self._head_html()}{body}"
                    f"{self.outcome.html(self._answer)}</div>")
        how = html.escape(f"lab.predictions[{self.id!r}].answer(value, confidence=1..5)")
        reveal = (f"<details><summary>Reveal</summary><p>Answer: {md_inline(self._answer)}"
                  f"</p><p>{md_inline(self.explain)}</p></details>")
        return (f"<div class='lab-predict'>{self._head_html()}{body}"
                f"<p>Confidence 1-5. From code: <code>{how}</code></p>{reveal}</div>")

    def text(self) -> str:
        lines = [f"Predict [{self.id}]: {self.question}"]
        if isinstance(self.choices, list):
            lines += [f"  ({chr(97 + i)}) {c}" for i, c in enumerate(self.choices)]
        if self.outcome is not None:
            lines.append("  " + self.outcome.text())
        else:
            lines.append(f"  answer from code: lab.predictions[{self.id!r}].answer(value, confidence)")
        return "\n".join(lines)

    def widget(self):
        import ipywidgets as w

        if isinstance(self.choices, list):
            # Labels are plain text in a radio button: show the Markdown as the reader means it.
            labels = [(_plain(c), c) for c in self.choices]
            pick = w.RadioButtons(options=labels, value=None, description="")
        elif self.choices == NUMERIC:
            pick = w.FloatText(description="answer")
        else:
            pick = w.Text(description="answer")
        confidence = w.IntSlider(value=3, min=1, max=5, description="confidence")
        button = w.Button(description="Reveal", button_style="info")
        result = w.HTML()

        def lock(outcome: Outcome) -> None:
            if outcome.value is not None:
                try:
                    pick.value = outcome.value
                except Exception:  # a stored value the control cannot show
                    pass
            confidence.value = outcome.confidence
            for control in (pick, confidence, button):
                control.disabled = True
            button.description = "Revealed"
            result.value = outcome.html(self._answer)

        def reveal(_):
            if self.outcome is not None:
                lock(self.outcome)
                return
            if pick.value is None or pick.value == "":
                result.value = "<i>Pick an answer first.</i>"
                return
            lock(self.answer(pick.value, confidence.value, source="widget"))

        button.on_click(reveal)  # a callback: the cell never waits for the click
        if self.outcome is not None:
            lock(self.outcome)
        return w.VBox([w.HTML(self._head_html()), pick, confidence, button, result],
                      layout=w.Layout(border="1px solid #ccc", padding="6px"))

    def show(self) -> "Prediction":
        from .display import in_kernel, show

        show(text=self.text(), html_text=self.fallback_html(),
             widget=self.widget() if in_kernel() else None)
        self.mark_shown()
        return self

    def redisplay(self) -> None:
        self.show()


def _plain(text: Any) -> str:
    """Markdown markers out of a label that cannot render HTML (``*real*`` → ``real``)."""
    import re

    value = str(text)
    value = re.sub(r"`([^`]*)`", r"\1", value)
    return re.sub(r"(\*\*|__|\*|_)(\S(?:.*?\S)?)\1", r"\2", value)


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


def first_answers(records: list[dict]) -> dict[str, dict]:
    """The first record of each prediction id (later ones, from older versions, never count)."""
    first: dict[str, dict] = {}
    for record in records:
        first.setdefault(record.get("id"), record)
    return first


def first_answer(store: Path, prediction_id: str) -> dict | None:
    return first_answers(load_records(store)).get(prediction_id)


def calibration_table(records: list[dict]):
    """Accuracy per confidence level, counting each prediction id's first answer."""
    import pandas as pd

    scored = [r for r in first_answers(records).values() if r.get("correct") is not None]
    frame = pd.DataFrame(scored, columns=["id", "confidence", "correct"])
    frame["correct"] = frame["correct"].astype(float)
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
