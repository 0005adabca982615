"""The course maps (``docs/course-map/<notebook>.md``) point at things that exist.

Each map is a table ``| # | course claim or prompt | course line | status | where |`` for one
concept notebook. ``where`` names section headings (``§3 Break it``: the notebook has a heading
``## 3. Break it...``, or a ``###`` heading under section 3 starting with that text), predict
ids (``predict c7-reused-name``) and exercise tasks (``exercise Task 2``). The checks here:
every reference resolves, every status is one of the known ones, rows that are not
demonstrated say why, and every prediction of the notebook appears in its map.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPS = sorted((ROOT / "docs" / "course-map").glob("*.md"))
STATUSES = {"demo", "predict", "exercise", "stated", "not shown"}
HEADER = ["#", "course claim or prompt (paraphrased)", "course line", "status", "where"]
SECTION_REF = re.compile(r"§(\d+)(?:[ \u00a0]([^;,()`]+?))?(?=$|[;,()`]| predict| exercise)")
PREDICT_REF = re.compile(r"predict ([a-z0-9][a-z0-9-]*)")
TASK_REF = re.compile(r"exercise Task (\d+)")
PREDICT_CALL = re.compile(r"lab\.predict\(\s*\"([^\"]+)\"")


def table_rows(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("|") and not re.match(r"^\|[\s:|-]+\|$", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def sections(markdown: str) -> dict[int, list[str]]:
    """Section number -> [its title, the titles of its ### subsections]."""
    found: dict[int, list[str]] = {}
    current = None
    for line in markdown.splitlines():
        top = re.match(r"^## (\d+)\. (.+)$", line)
        if top:
            current = int(top.group(1))
            found[current] = [top.group(2).strip()]
        elif current is not None and (sub := re.match(r"^### (.+)$", line)):
            found[current].append(sub.group(1).strip())
        elif line.startswith("## "):
            current = None
    return found


def _plain(text: str) -> str:
    return text.replace("`", "").lower().strip()


@pytest.mark.parametrize("path", MAPS, ids=lambda p: p.name)
def test_every_reference_in_the_map_exists(path):
    stem = path.stem
    notebook = ROOT / "notebooks" / f"{stem}.md"
    exercise = ROOT / "solutions" / f"{stem}_exercise.md"
    assert notebook.exists(), f"{path.name} maps a notebook that does not exist: {notebook}"
    text = notebook.read_text(encoding="utf-8")
    exercise_text = exercise.read_text(encoding="utf-8") if exercise.exists() else ""
    known_sections = sections(text)
    predicts = set(PREDICT_CALL.findall(text)) | set(PREDICT_CALL.findall(exercise_text))
    tasks = set(re.findall(r"^## Task (\d+)", exercise_text, flags=re.M))

    rows = table_rows(path)
    assert rows and [c.lower() for c in rows[0]] == HEADER, f"header must be {HEADER}"
    problems, referenced = [], set()
    for row in rows[1:]:
        if len(row) != 5:
            problems.append(f"row with {len(row)} columns: {row}")
            continue
        number, claim, line, status, where = row
        statuses = {s.strip() for s in re.split(r"[+,/]", status)}
        if not statuses <= STATUSES:
            problems.append(f"#{number}: unknown status {status!r}")
        if not where:
            problems.append(f"#{number}: 'where' is empty (name the place, or the reason)")
        if not re.match(r"^L\d+(-\d+)?(, L?\d+(-\d+)?)*$|^-$", line):
            problems.append(f"#{number}: course line {line!r} is not like L458 or L404-405")
        for n, title in SECTION_REF.findall(where):
            heads = known_sections.get(int(n))
            if heads is None:
                problems.append(f"#{number}: no section §{n} in {notebook.name}")
            elif title and not any(_plain(h).startswith(_plain(title)) for h in heads):
                problems.append(f"#{number}: §{n} is {heads}, not {title!r}")
        for pid in PREDICT_REF.findall(where):
            referenced.add(pid)
            if pid not in predicts:
                problems.append(f"#{number}: no lab.predict({pid!r}) in the notebook or exercise")
        for task in TASK_REF.findall(where):
            if task not in tasks:
                problems.append(f"#{number}: no '## Task {task}' in {exercise.name}")
        if statuses & {"demo", "predict", "exercise"} and not (
                SECTION_REF.search(where) or PREDICT_REF.search(where) or TASK_REF.search(where)):
            problems.append(f"#{number}: status {status!r} but 'where' names no section, "
                            "predict or task")
    missing = sorted(set(PREDICT_CALL.findall(text)) - referenced)
    if missing:
        problems.append(f"predictions of the notebook missing from the map: {missing}")
    assert not problems, "\n".join(problems)
