"""``lab.progress()``: how far the learner is, per notebook, in one table.

It joins two files of the learner's state folder (``.lab/``, or ``LAB_STATE_DIR``) with the
course index (:mod:`lab_support.course`):

* ``predictions.jsonl``: every first answer to a prediction (``lab_support.predict``);
* ``checks.jsonl``: every ``lab.check`` result of a learner's kernel (the lab registers a
  listener with ``lab_support.checks.on_record`` that appends each result there). The grader
  runs submissions in a sandbox of its own, so their results never land in a learner's file.

A prediction counts once it is answered; a check counts as passed when its latest result
passed (fix the code, run the check again, and it counts). Predictions and checks are
matched to notebooks by their ids and names, which the index reads from the notebooks.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from .course import Entry, course
from .display import ShownInCell, show
from .predict import first_answers, load_records

CHECKS_FILE = "checks.jsonl"
PREDICTIONS_FILE = "predictions.jsonl"
COLUMNS = ["notebook", "predictions", "right", "checks passed", "points"]


def keep_check_results(state_dir: Path) -> Path:
    """From now on, append every check result of this process to ``state_dir/checks.jsonl``.
    Returns the file."""
    from .checks import on_record

    path = state_dir / CHECKS_FILE
    on_record(_Appender(path))
    return path


class _Appender:
    """A check listener writing one JSON line per result (equal for the same file, so a
    second Lab in the kernel does not write every result twice)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __eq__(self, other) -> bool:
        return isinstance(other, _Appender) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __call__(self, result) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(result.to_record(), sort_keys=True, default=str) + "\n")


def load_checks(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a killed kernel: the others still count
    return out


def progress_rows(entries: list[Entry], predictions: list[dict], checks: list[dict]) -> list[dict]:
    answered = first_answers(predictions)
    latest: dict[str, dict] = {}
    for record in checks:  # in file order: a later result of the same check wins
        latest[str(record.get("name", "")).strip()] = record
    rows = []
    for entry in entries:
        mine = [answered[i] for i in entry.predictions if i in answered]
        right = sum(1 for r in mine if r.get("correct") is True)
        scored = sum(1 for r in mine if r.get("correct") is not None)
        passed = [n for n in entry.checks if latest.get(n, {}).get("passed")]
        earned = sum(float(latest[n].get("points") or 0) for n in passed)
        rows.append({
            "notebook": entry.title,
            "predictions": f"{len(mine)}/{len(entry.predictions)}",
            "right": f"{right}/{scored}" if scored else "",
            "checks passed": f"{len(passed)}/{len(entry.checks)}" if entry.exercise else "no exercise",
            "points": (f"{earned:g}/{sum(entry.checks.values()):g}" if entry.exercise else ""),
            "_done": len(mine) == len(entry.predictions) and len(passed) == len(entry.checks),
        })
    return rows


class ProgressReport(ShownInCell):
    """The table ``lab.progress()`` showed; ``.frame`` is a DataFrame of it."""

    def __init__(self, rows: list[dict], state_dir: Path) -> None:
        self.rows, self.state_dir = rows, state_dir

    @property
    def frame(self):
        import pandas as pd

        return pd.DataFrame([{k: r[k] for k in COLUMNS} for r in self.rows], columns=COLUMNS)

    def text(self) -> str:
        done = sum(r["_done"] for r in self.rows)
        lines = [f"progress: {done} of {len(self.rows)} notebook(s) complete"]
        lines += [f"  {r['notebook']}: predictions {r['predictions']}, checks {r['checks passed']}"
                  for r in self.rows]
        return "\n".join(lines)

    def html(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(r[c]))}</td>"
                             for c in COLUMNS) + ("<td>&#10004;</td>" if r["_done"] else "<td></td>")
            + "</tr>" for r in self.rows)
        done = sum(r["_done"] for r in self.rows)
        return (f"<div class='lab-progress'><b>Your progress</b>: {done} of {len(self.rows)} "
                f"notebook(s) complete<table><tr>{head}<th></th></tr>{body}</table>"
                f"<small>from {html.escape(str(self.state_dir))}</small></div>")

    def show(self) -> "ProgressReport":
        show(text=self.text(), html_text=self.html())
        self.mark_shown()
        return self

    def redisplay(self) -> None:
        self.show()


def progress(state_dir: Path, root: Path | None = None) -> ProgressReport:
    entries = course(root) if root is not None else course()
    rows = progress_rows(entries, load_records(state_dir / PREDICTIONS_FILE),
                         load_checks(state_dir / CHECKS_FILE))
    return ProgressReport(rows, state_dir)
