"""Make the learner notebooks in ``exercises/`` from the complete ones in ``solutions/``.

One source, so the two trees cannot drift::

    python -m lab_support.assign              # write exercises/ from solutions/
    python -m lab_support.assign --check      # exit 1 and list files that are out of date
    python -m lab_support.assign --strip [PATH ...]          # strip saved outputs in place
    python -m lab_support.assign --strip --check [PATH ...]  # exit 1 if any notebook has outputs

Markers (whole lines inside code cells, any indentation):

* ``# BEGIN SOLUTION`` ... ``# END SOLUTION``: the lines between become ``# YOUR CODE HERE``
  and ``raise NotImplementedError`` at the indentation of the ``BEGIN`` line.
* a code cell whose first non-blank line is ``# HIDDEN CHECK`` (or tagged ``hidden-check``)
  is left out of the exercise; the grader puts it back.

Outputs, execution counts and editor/widget metadata are dropped, and the JSON is written
the same way every time, so ``--check`` can compare bytes.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import sys
from pathlib import Path

import nbformat

from .checks import is_hidden_check_cell

ROOT = Path(__file__).resolve().parents[1]
BEGIN_MARKER = "# BEGIN SOLUTION"
END_MARKER = "# END SOLUTION"
PLACEHOLDER = ("# YOUR CODE HERE", "raise NotImplementedError")
# Metadata worth keeping; everything else (widget state, timings, editor state) is noise.
KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info", "lab")
KEEP_CELL_METADATA = ("tags", "jupyter", "lab")


class MarkerError(ValueError):
    """A solution notebook's markers do not pair up; the message names file and cell."""


def replace_solutions(source: str, where: str = "cell") -> str:
    """Swap every BEGIN/END SOLUTION block in one cell's source for the placeholder."""
    out: list[str] = []
    inside_since: int | None = None
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if marker == BEGIN_MARKER:
            if inside_since is not None:
                raise MarkerError(f"{where}, line {number}: '{BEGIN_MARKER}' inside another "
                                  f"solution block (opened on line {inside_since})")
            inside_since = number
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + text for text in PLACEHOLDER)
        elif marker == END_MARKER:
            if inside_since is None:
                raise MarkerError(f"{where}, line {number}: '{END_MARKER}' without a "
                                  f"'{BEGIN_MARKER}' before it")
            inside_since = None
        elif inside_since is None:
            out.append(line)
    if inside_since is not None:
        raise MarkerError(f"{where}, line {inside_since}: '{BEGIN_MARKER}' is never closed "
                          f"by '{END_MARKER}'")
    return "\n".join(out)


def clean_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """A copy without outputs, execution counts or volatile metadata, with stable cell ids."""
    nb = copy.deepcopy(nb)
    nb.nbformat, nb.nbformat_minor = 4, max(nb.get("nbformat_minor", 5), 5)
    meta = {k: copy.deepcopy(v) for k, v in nb.metadata.items() if k in KEEP_NOTEBOOK_METADATA}
    if "language_info" in meta:  # the full block changes with every Python patch release
        meta["language_info"] = {"name": meta["language_info"].get("name", "python")}
    nb.metadata = nbformat.from_dict(meta)
    for index, cell in enumerate(nb.cells):
        if not cell.get("id"):
            # Ids from nbformat are random; derive them so the output stays byte-stable.
            cell["id"] = hashlib.sha1(f"{name}:{index}".encode()).hexdigest()[:12]
        cell.metadata = nbformat.from_dict(
            {k: v for k, v in cell.get("metadata", {}).items() if k in KEEP_CELL_METADATA})
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def make_exercise(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The learner version of one solution notebook."""
    nb = clean_notebook(solution, name)
    cells = []
    for index, cell in enumerate(nb.cells):
        if is_hidden_check_cell(cell):
            continue
        if cell.cell_type == "code":
            cell.source = replace_solutions(cell.source, f"{name}, cell {index}")
        cells.append(cell)
    nb.cells = cells
    nb.metadata.setdefault("lab", {})["generated_from"] = f"solutions/{name}"
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    nbformat.validate(nb)
    return nbformat.writes(nb, version=4) + "\n"


def read(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as exc:
        raise SystemExit(f"{path}: not a readable notebook ({exc})") from exc


def planned_exercises(source_dir: Path, dest_dir: Path) -> dict[Path, str]:
    """Every exercise file that should exist, with its exact text."""
    if not source_dir.is_dir():
        raise SystemExit(f"No solutions directory at {source_dir}")
    return {dest_dir / path.name: dumps(make_exercise(read(path), path.name))
            for path in sorted(source_dir.glob("*.ipynb"))}


def drifted(source_dir: Path, dest_dir: Path) -> list[str]:
    """Human-readable problems: missing, out-of-date and orphaned exercise files."""
    planned = planned_exercises(source_dir, dest_dir)
    problems = []
    for path, text in planned.items():
        if not path.exists():
            problems.append(f"{path}: missing (run python -m lab_support.assign)")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: out of date with {source_dir / path.name}")
    if dest_dir.is_dir():
        for path in sorted(dest_dir.glob("*.ipynb")):
            if path not in planned:
                problems.append(f"{path}: has no source in {source_dir}")
    return problems


def write_exercises(source_dir: Path, dest_dir: Path) -> list[Path]:
    dest_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path, text in planned_exercises(source_dir, dest_dir).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def notebook_paths(targets: list[Path]) -> list[Path]:
    paths: list[Path] = []
    for target in targets:
        if target.is_dir():
            paths += sorted(p for p in target.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif target.suffix == ".ipynb" and target.exists():
            paths.append(target)
        else:
            raise SystemExit(f"{target}: not a notebook or a directory")
    return paths


def has_outputs(nb: nbformat.NotebookNode) -> bool:
    return any(c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
               for c in nb.cells)


def strip(targets: list[Path], check_only: bool = False) -> list[Path]:
    """Strip outputs in place (or, with check_only, just list notebooks that have them)."""
    changed = []
    for path in notebook_paths(targets):
        nb = read(path)
        text = dumps(clean_notebook(nb, path.name))
        if check_only:
            if has_outputs(nb):
                changed.append(path)
        elif path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_support.assign", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path,
                        help="with --strip: notebooks or folders (default: notebooks/ solutions/)")
    parser.add_argument("--source", type=Path, default=ROOT / "solutions")
    parser.add_argument("--dest", type=Path, default=ROOT / "exercises")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on drift")
    parser.add_argument("--strip", action="store_true", help="strip outputs from notebooks")
    args = parser.parse_args(argv)
    try:
        if args.strip:
            targets = args.paths or [p for p in (ROOT / "notebooks", ROOT / "solutions") if p.is_dir()]
            found = strip(targets, check_only=args.check)
            verb = "has saved outputs" if args.check else "stripped"
            for path in found:
                print(f"{path}: {verb}")
            return 1 if (args.check and found) else 0
        if args.paths:
            parser.error("paths are only used with --strip; use --source/--dest")
        if args.check:
            problems = drifted(args.source, args.dest)
            for problem in problems:
                print(problem)
            if not problems:
                print(f"{args.dest} is up to date with {args.source}")
            return 1 if problems else 0
        for path in write_exercises(args.source, args.dest):
            print(f"wrote {path}")
        return 0
    except MarkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
