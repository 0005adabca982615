"""The course index, read from the notebooks themselves, and the course home built from it.

Every teaching notebook ``notebooks/NN_name.md`` (jupytext source of ``NN_name.ipynb``)
opens with one Markdown cell that holds, in this order:

* its title, ``# NN · Title``;
* a time line, ``**Time:** about 25 min, exercise 20 min``;
* its goals: a ``Learning goals`` paragraph followed by a list.

Its exercise, when it has one, is ``exercises/NN_name_exercise.ipynb`` (generated from
``solutions/``). The predictions of a notebook are its ``lab.predict("id", ...)`` calls; the
checks of an exercise are its visible ``lab.check("name", points=...)`` calls. So the index
cannot drift from the notebooks, and ``lab.progress()`` knows what "all of it" is.

``python -m lab_support.course`` writes ``notebooks/README.md`` (the course home; ``make
notebooks`` runs it); ``--check`` exits 1 when the home is stale or a notebook lacks its
title, time or goals (``make test`` runs it).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jupytext

from .checks import is_hidden_check_cell

ROOT = Path(__file__).resolve().parents[1]
HOME = "README.md"
NOTEBOOK_NAME = re.compile(r"^\d\d[a-z0-9_]*$")
TITLE = re.compile(r"^#\s+(.+?)\s*$", re.M)
TIME = re.compile(r"^\*\*Time:\*\*\s*(.+?)\s*$", re.M)
GOALS_HEAD = re.compile(r"learning goals", re.I)
LIST_ITEM = re.compile(r"^(?:[*-]|\d+\.)\s+(.*)$")


class CourseError(ValueError):
    """A notebook does not carry what the course home needs; the message says what."""


@dataclass
class Entry:
    stem: str                    # 00_quick_win
    title: str                   # 00 · Quick win: ...
    time: str                    # about 15 min, exercise 20 min
    goals: list[str]
    predictions: list[str]       # prediction ids, in order
    exercise: str | None = None  # exercises/00_quick_win_exercise.ipynb (repo-relative)
    checks: dict[str, float] = field(default_factory=dict)  # visible check name -> points

    @property
    def notebook(self) -> str:
        return f"notebooks/{self.stem}.ipynb"

    @property
    def exercise_stem(self) -> str | None:
        return Path(self.exercise).stem if self.exercise else None


def _first_markdown(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            return cell.source
    return ""


def goals_of(text: str) -> list[str]:
    """The list items after the 'Learning goals' paragraph (continuation lines joined)."""
    head = GOALS_HEAD.search(text)
    if not head:
        return []
    goals: list[str] = []
    for line in text[head.end():].splitlines()[1:]:
        item = LIST_ITEM.match(line.strip())
        if item:
            goals.append(item.group(1).strip())
        elif goals and line.startswith((" ", "\t")) and line.strip():
            goals[-1] += " " + line.strip()
        elif goals and not line.strip():
            break
    return goals


def _calls(nb, method: str, *, skip_hidden: bool = False) -> list[ast.Call]:
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or (skip_hidden and is_hidden_check_cell(cell)):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # an exercise placeholder cell
            continue
        found += [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                  and isinstance(node.func, ast.Attribute) and node.func.attr == method
                  and isinstance(node.func.value, ast.Name) and node.func.value.id == "lab"]
    return found


def _literal(node, default=None):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return default


def prediction_ids(nb) -> list[str]:
    return [i for i in (_literal(c.args[0]) for c in _calls(nb, "predict") if c.args)
            if isinstance(i, str)]


def visible_checks(nb) -> dict[str, float]:
    checks = {}
    for call in _calls(nb, "check", skip_hidden=True):
        name = _literal(call.args[0]) if call.args else None
        points = next((_literal(k.value, 1) for k in call.keywords if k.arg == "points"), None)
        if points is None and len(call.args) > 1:
            points = _literal(call.args[1], 1)
        if isinstance(name, str):
            checks[name.strip()] = float(points if points is not None else 1)
    return checks


def read_entry(md: Path, root: Path = ROOT) -> Entry:
    nb = jupytext.read(md, fmt="md")
    head = _first_markdown(nb)
    title, time = TITLE.search(head), TIME.search(head)
    goals = goals_of(head)
    missing = [what for what, ok in (("a '# NN · Title' heading", title),
                                     ("a '**Time:** ...' line", time),
                                     ("a 'Learning goals' list", goals)) if not ok]
    if missing:
        raise CourseError(f"{md.relative_to(root)}: its first Markdown cell needs "
                          + ", ".join(missing) + " (see docs/authoring.md, 'Adding a notebook')")
    entry = Entry(md.stem, title.group(1), time.group(1), goals, prediction_ids(nb))
    exercise = root / "exercises" / f"{md.stem}_exercise.ipynb"
    if exercise.exists():
        entry.exercise = str(exercise.relative_to(root))
        entry.checks = visible_checks(jupytext.read(exercise))
    return entry


def course(root: Path = ROOT) -> list[Entry]:
    """Every teaching notebook, in file-name order (the NN prefix is the course order)."""
    return [read_entry(md, root) for md in sorted((root / "notebooks").glob("*.md"))
            if NOTEBOOK_NAME.match(md.stem)]


def home_markdown(entries: list[Entry]) -> str:
    lines = [
        "<!-- Generated by `python -m lab_support.course` (make notebooks) from each notebook's",
        "     first cell. Do not edit here: edit the notebook, then run make notebooks. -->",
        "",
        "# Course home: Digital FTE → Production Worker",
        "",
        "Work through the notebooks in order. Each one teaches one idea by running it: predict what",
        "a durable run will do, watch it, break it, fix it. Most have an exercise in `exercises/`",
        "with checks that tell you when it works.",
        "",
        "* Start JupyterLab with `make lab` (it opens notebook 00).",
        "* See how far you are with `lab.progress()` in any notebook.",
        "* A notebook runs top to bottom; re-running a cell is safe. To start a notebook's demos",
        "  over without restarting the kernel, run `lab.reset()`.",
        "",
        "| # | Notebook | Time | Exercise |",
        "|---|---|---|---|",
    ]
    for e in entries:
        number, _, name = e.title.partition(" · ")
        exercise = (f"[{Path(e.exercise).name}](../{e.exercise})" if e.exercise else "none")
        lines.append(f"| {number} | [{name or e.title}]({e.stem}.ipynb) | {e.time} | {exercise} |")
    for e in entries:
        lines += ["", f"## {e.title}", "",
                  f"**Time:** {e.time}. **Open:** [{e.stem}.ipynb]({e.stem}.ipynb)"
                  + (f". **Exercise:** [{e.exercise}](../{e.exercise})"
                     f" ({len(e.checks)} checks)" if e.exercise else "") + ".", "",
                  "Goals:", ""]
        lines += [f"* {goal}" for goal in e.goals]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_support.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when notebooks/README.md is stale")
    args = parser.parse_args(argv)
    try:
        text = home_markdown(course())
    except CourseError as exc:
        print(exc, file=sys.stderr)
        return 1
    path = ROOT / "notebooks" / HOME
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if args.check:
        if current != text:
            print("notebooks/README.md is stale: run `make notebooks`", file=sys.stderr)
            return 1
        print("notebooks/README.md is up to date")
        return 0
    if current != text:
        path.write_text(text, encoding="utf-8")
        print("wrote notebooks/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
