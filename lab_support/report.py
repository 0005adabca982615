"""Grading output: ``grades.csv`` and a self-contained ``report.html``.

The report shows each submission's score, how often each check passed, notebooks that did
not run to the end, records that were ignored (names the source does not declare), and the
score distribution as a matplotlib histogram embedded as a base64 PNG (one file to open or
mail, nothing fetched from the internet).

CSV cells that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) are written with a leading ``'``, as are cells that
already start with one, so ``read_csv`` can undo it exactly.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections import defaultdict
from dataclasses import astuple, dataclass, fields
from pathlib import Path

EXECUTION_ROW = "(execution)"


@dataclass
class GradeRow:
    submission: str
    notebook: str
    check: str
    points: float
    max: float
    hint: str
    status: str  # passed | failed | not reached | skipped | ignored; or, for "(execution)":
    #              completed, error, timeout, memory limit, output limit, kernel died, ...


CSV_COLUMNS = [f.name for f in fields(GradeRow)]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SCORED = ("passed", "failed", "not reached")


def csv_cell(text: str) -> str:
    """A text cell that no spreadsheet runs as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS + ("'",)) else text


def _uncsv_cell(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def write_csv(rows: list[GradeRow], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            values = [csv_cell(str(v)) for v in astuple(row)]
            values[3], values[4] = f"{row.points:g}", f"{row.max:g}"
            writer.writerow(values)


def read_csv(path: Path) -> list[GradeRow]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [GradeRow(*(_uncsv_cell(r[k]) for k in ("submission", "notebook", "check")),
                         float(r["points"]), float(r["max"]), _uncsv_cell(r["hint"]),
                         _uncsv_cell(r["status"])) for r in csv.DictReader(fh)]


def submission_scores(rows: list[GradeRow]) -> dict[str, tuple[float, float]]:
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        totals[row.submission][0] += row.points
        totals[row.submission][1] += row.max
    return {name: (earned, worth) for name, (earned, worth) in totals.items()}


def notebook_scores(rows: list[GradeRow]) -> dict[tuple[str, str], tuple[float, float, str]]:
    """(earned, possible, run status) per (submission, notebook), in first-seen order."""
    totals: dict[tuple[str, str], list] = {}
    for row in rows:
        entry = totals.setdefault((row.submission, row.notebook), [0.0, 0.0, ""])
        entry[0] += row.points
        entry[1] += row.max
        if row.check == EXECUTION_ROW:
            entry[2] = row.status
    return {key: (earned, worth, status) for key, (earned, worth, status) in totals.items()}


def check_pass_rates(rows: list[GradeRow]) -> list[tuple[str, str, int, int]]:
    """(notebook, check, passed, attempts) per check, in first-seen order."""
    counts: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        if row.check == EXECUTION_ROW or row.status not in SCORED:
            continue
        entry = counts.setdefault((row.notebook, row.check), [0, 0])
        entry[0] += row.status == "passed"
        entry[1] += 1
    return [(nb, check, p, n) for (nb, check), (p, n) in counts.items()]


def score_histogram_png(scores: list[float]) -> str:
    """Base64 PNG of the score distribution (percent of the maximum)."""
    import matplotlib
    matplotlib.use("Agg")  # no display in CI or in a grading job
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    try:
        ax.hist(scores, bins=[i * 10 for i in range(11)], color="#4c72b0", edgecolor="white")
        ax.set_xlim(0, 100)
        ax.set_xlabel("score (% of maximum)")
        ax.set_ylabel("submissions")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("Score distribution")
        buffer = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pct(earned: float, worth: float) -> float:
    return 100.0 * earned / worth if worth else 0.0


def render_report(rows: list[GradeRow], notes: list[str] = ()) -> str:
    e = html.escape
    scores = submission_scores(rows)
    percents = [_pct(earned, worth) for earned, worth in scores.values()]
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Grading report</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:60em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:3px 8px;text-align:left}.bar{background:#4c72b0;height:10px}"
             ".bad{color:#cf222e}</style></head><body>",
             "<h1>Grading report</h1>",
             f"<p>{len(scores)} submission(s), "
             f"{len({(r.submission, r.notebook) for r in rows})} notebook run(s).</p>",
             *(f"<p>{e(note)}</p>" for note in notes)]

    parts.append("<h2>Scores</h2><table><tr><th>submission</th><th>points</th><th>max</th>"
                 "<th>%</th></tr>")
    for name, (earned, worth) in sorted(scores.items()):
        parts.append(f"<tr><td>{e(name)}</td><td>{earned:g}</td><td>{worth:g}</td>"
                     f"<td>{_pct(earned, worth):.0f}</td></tr>")
    parts.append("</table>")
    if percents:
        parts.append(f"<img alt='score distribution' src='data:image/png;base64,"
                     f"{score_histogram_png(percents)}'>")

    parts.append("<h2>Notebooks</h2><table><tr><th>submission</th><th>notebook</th>"
                 "<th>points</th><th>max</th><th>run</th></tr>")
    for (submission, notebook), (earned, worth, status) in notebook_scores(rows).items():
        css = "" if status == "completed" else " class='bad'"
        parts.append(f"<tr><td>{e(submission)}</td><td>{e(notebook)}</td><td>{earned:g}</td>"
                     f"<td>{worth:g}</td><td{css}>{e(status)}</td></tr>")
    parts.append("</table>")

    parts.append("<h2>Checks</h2><table><tr><th>notebook</th><th>check</th><th>passed</th>"
                 "<th>pass rate</th></tr>")
    for notebook, check, passed, total in check_pass_rates(rows):
        rate = _pct(passed, total)
        parts.append(f"<tr><td>{e(notebook)}</td><td>{e(check)}</td><td>{passed}/{total}</td>"
                     f"<td><div class='bar' style='width:{rate:.0f}px'></div>{rate:.0f}%</td></tr>")
    parts.append("</table>")

    problems = [r for r in rows if r.check == EXECUTION_ROW and r.status != "completed"]
    parts.append("<h2>Notebooks that did not run to the end</h2>")
    if problems:
        parts.append("<table><tr><th>submission</th><th>notebook</th><th>status</th>"
                     "<th>detail</th></tr>")
        for r in problems:
            parts.append(f"<tr><td>{e(r.submission)}</td><td>{e(r.notebook)}</td>"
                         f"<td class='bad'>{e(r.status)}</td><td>{e(r.hint)}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>None: every notebook ran to the end.</p>")

    for status, title, why in (
            ("skipped", "Skipped checks", "not observable on the server graded against: 0 of 0"),
            ("ignored", "Ignored check records",
             "recorded by a notebook under a name its source does not declare: not counted")):
        listed = [r for r in rows if r.status == status]
        if not listed:
            continue
        parts.append(f"<h2>{title}</h2><p>{e(why)}.</p><table><tr><th>submission</th>"
                     "<th>notebook</th><th>check</th><th>detail</th></tr>")
        for r in listed:
            parts.append(f"<tr><td>{e(r.submission)}</td><td>{e(r.notebook)}</td>"
                         f"<td>{e(r.check)}</td><td>{e(r.hint)}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(rows: list[GradeRow], path: Path, notes: list[str] = ()) -> None:
    path.write_text(render_report(rows, notes), encoding="utf-8")
