"""Build the course notebooks from their readable Markdown sources.

One source of truth: ``tools/notebook_sources/<dir>/<name>.md`` becomes ``<dir>/<name>.ipynb``
(``<dir>`` is ``notebooks`` or ``solutions``). Reviewing a diff of a Markdown file is easy; a
diff of notebook JSON is not, and hand-edited notebooks drift.

Source format
-------------
* A line that is exactly `` ```python `` (optionally followed by ``tags=a,b``) opens a code
  cell; the next line that is exactly `` ``` `` closes it.
* Everything between code cells is Markdown. A line that is exactly ``+++`` splits two
  Markdown cells that would otherwise run together.
* Markdown may contain other fenced blocks (`` ```text ``, `` ```json ``); only `` ```python ``
  at the start of a line opens a code cell.

Usage::

    python tools/build_notebooks.py          # (re)write every notebook
    python tools/build_notebooks.py --check  # exit 1 when a notebook differs from its source
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from lab_support import assign  # noqa: E402  (one writer for notebook JSON: assign's)
SOURCES = ROOT / "tools" / "notebook_sources"
TARGET_DIRS = ("notebooks", "solutions")
CODE_OPEN = "```python"
FENCE = "```"
SPLIT = "+++"

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


class SourceError(ValueError):
    """A notebook source file is malformed; the message names the file and line."""


def parse_cells(text: str, origin: str = "<source>") -> list[nbformat.NotebookNode]:
    cells: list[nbformat.NotebookNode] = []
    markdown: list[str] = []
    code: list[str] | None = None
    tags: list[str] = []
    opened_at = 0

    def flush_markdown() -> None:
        body = "\n".join(markdown).strip("\n")
        if body.strip():
            cells.append(nbformat.v4.new_markdown_cell(body))
        markdown.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        if code is None:
            if line.rstrip() == CODE_OPEN or line.startswith(CODE_OPEN + " tags="):
                flush_markdown()
                code, opened_at = [], number
                rest = line[len(CODE_OPEN):].strip().removeprefix("tags=")
                tags = [t.strip() for t in rest.split(",") if t.strip()]
            elif line.strip() == SPLIT:
                flush_markdown()
            else:
                markdown.append(line)
        elif line == FENCE:
            cell = nbformat.v4.new_code_cell("\n".join(code).strip("\n"))
            if tags:
                cell.metadata["tags"] = tags
            cells.append(cell)
            code = None
        else:
            code.append(line)
    if code is not None:
        raise SourceError(f"{origin}:{opened_at}: code cell opened here is never closed")
    flush_markdown()
    return cells


def build(source: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = parse_cells(source.read_text(encoding="utf-8"), str(source))
    for cell in nb.cells:
        # nbformat picks random ids; assign.clean_notebook derives stable ones instead, so a
        # rebuild is byte-identical and `assign --strip` leaves the file alone.
        del cell["id"]
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return assign.clean_notebook(nb, f"{source.stem}.ipynb")


def render(nb: nbformat.NotebookNode) -> str:
    return assign.dumps(nb)


def pairs() -> list[tuple[Path, Path]]:
    found = []
    for target_dir in TARGET_DIRS:
        for source in sorted((SOURCES / target_dir).glob("*.md")):
            found.append((source, ROOT / target_dir / f"{source.stem}.ipynb"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; fail when a notebook is missing or out of date")
    args = parser.parse_args(argv)
    stale = []
    for source, target in pairs():
        wanted = render(build(source))
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == wanted:
            continue
        if args.check:
            stale.append(target.relative_to(ROOT))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(wanted, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        print("Out of date (run `python tools/build_notebooks.py`): "
              + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
