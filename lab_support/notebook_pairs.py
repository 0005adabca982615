"""Course notebooks as jupytext pairs: ``notebooks/X.md`` ⇄ ``notebooks/X.ipynb`` (and the same in
``solutions/``).

The Markdown file is the reviewed source: its diff reads as prose and code. The ``.ipynb`` is what
learners open and papermill runs, committed without outputs. Each ``.ipynb`` carries
``"jupytext": {"formats": "ipynb,md"}``, so JupyterLab (jupytext is installed with the project)
keeps both files in step whenever either is saved there — editing in JupyterLab is the normal way.
Outside JupyterLab::

    python -m lab_support.notebook_pairs              # write each .ipynb from its .md (make notebooks)
    python -m lab_support.notebook_pairs --check      # exit 1 when a pair differs (make test runs it)
    python -m lab_support.notebook_pairs --from-ipynb notebooks/X.ipynb   # keep an edit made there

A pair *differs* when its cells differ in type, source or the metadata worth keeping (tags, the
``jupyter`` block that hides a cell's source). Cell ids, outputs and execution counts never count,
so a notebook saved from JupyterLab is not "stale". A rebuild keeps the ids of unchanged cells (the
grader matches check cells by id) and gives new cells ids derived from their content.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import jupytext
import nbformat

from . import assign

ROOT = Path(__file__).resolve().parents[1]
PAIRED_DIRS = ("notebooks", "solutions")
FORMATS = "ipynb,md"
KERNELSPEC = {"name": "production-worker-lab", "display_name": "Production Worker Lab",
              "language": "python"}


def pairs(root: Path = ROOT) -> list[tuple[Path, Path]]:
    """(markdown, notebook) for every Markdown source in the paired folders."""
    return [(md, md.with_suffix(".ipynb")) for folder in PAIRED_DIRS
            for md in sorted((root / folder).glob("*.md")) if md.name != "README.md"]


def cell_key(cell) -> tuple:
    """What makes two cells the same for a pair: type, source, kept metadata."""
    meta = {k: v for k, v in cell.get("metadata", {}).items() if k in assign.KEEP_CELL_METADATA}
    return cell.cell_type, cell.source.strip("\n"), repr(sorted(meta.items()))


def read_markdown(md: Path) -> nbformat.NotebookNode:
    try:
        return jupytext.read(md, fmt="md")
    except Exception as exc:  # jupytext raises several kinds; the message names the problem
        raise SystemExit(f"{md}: not a readable jupytext Markdown notebook ({exc})") from exc


def build(md: Path, existing: nbformat.NotebookNode | None) -> nbformat.NotebookNode:
    """The notebook for ``md``: its cells, the ids of matching cells in ``existing``."""
    source = read_markdown(md)
    nb = nbformat.v4.new_notebook()
    nb.metadata = nbformat.from_dict({"kernelspec": dict(KERNELSPEC),
                                      "language_info": {"name": "python"}})
    free_ids: dict[tuple, list[str]] = {}
    for cell in (existing.cells if existing is not None else []):
        if cell.get("id"):
            free_ids.setdefault(cell_key(cell), []).append(cell["id"])
    taken: set[str] = set()
    for cell in source.cells:
        cell = nbformat.from_dict(dict(cell))
        cell.source = cell.source.strip("\n")
        reuse = free_ids.get(cell_key(cell)) or []
        cell["id"] = reuse.pop(0) if reuse else _new_id(md.stem, cell, taken)
        taken.add(cell["id"])
        nb.cells.append(cell)
    nb = assign.clean_notebook(nb, md.with_suffix(".ipynb").name)
    nb.metadata["jupytext"] = {"formats": FORMATS}
    return nb


def _new_id(stem: str, cell, taken: set[str]) -> str:
    for salt in range(1000):
        cid = hashlib.sha1(f"{stem}:{salt}:{cell.source}".encode()).hexdigest()[:12]
        if cid not in taken:
            return cid
    raise RuntimeError("could not derive a unique cell id")  # 1000 identical cells


def read_notebook(path: Path) -> nbformat.NotebookNode | None:
    return nbformat.read(str(path), as_version=4) if path.exists() else None


def differences(md: Path, ipynb: Path) -> str | None:
    """None when the pair agrees; else a one-line description of the first difference."""
    nb = read_notebook(ipynb)
    if nb is None:
        return "the .ipynb is missing"
    want = [cell_key(c) for c in build(md, nb).cells]
    have = [cell_key(c) for c in nb.cells]
    for index, (a, b) in enumerate(zip(want, have)):
        if a != b:
            return f"cell {index} differs ({a[0]} in the .md, {b[0]} in the .ipynb)"
    if len(want) != len(have):
        return f"{len(want)} cells in the .md, {len(have)} in the .ipynb"
    if (nb.metadata.get("jupytext") or {}).get("formats") != FORMATS:
        return "the .ipynb is not marked as paired (jupytext.formats)"
    return None


def write_pair_from_markdown(md: Path, ipynb: Path) -> bool:
    existing = read_notebook(ipynb)
    text = assign.dumps(build(md, existing))
    if ipynb.exists() and ipynb.read_text(encoding="utf-8") == text:
        return False
    ipynb.write_text(text, encoding="utf-8")
    return True


def write_markdown_from_notebook(ipynb: Path) -> Path:
    """Keep an edit made in the .ipynb: rewrite its .md from it, then the .ipynb from that."""
    nb = read_notebook(ipynb)
    if nb is None:
        raise SystemExit(f"{ipynb}: no such notebook")
    md = ipynb.with_suffix(".md")
    nb.metadata["jupytext"] = {"formats": FORMATS}
    jupytext.write(nb, md, fmt="md")
    write_pair_from_markdown(md, ipynb)
    return md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_support.notebook_pairs",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on drift")
    parser.add_argument("--from-ipynb", nargs="+", type=Path, metavar="IPYNB",
                        help="rewrite these notebooks' .md from the .ipynb")
    args = parser.parse_args(argv)
    if args.from_ipynb:
        for path in args.from_ipynb:
            print(f"wrote {write_markdown_from_notebook(path)}")
        return 0
    problems = []
    for md, ipynb in pairs():
        if args.check:
            why = differences(md, ipynb)
            if why:
                problems.append(f"{ipynb.relative_to(ROOT)}: {why}. If you edited the .md, run "
                                "`make notebooks`; if you edited the .ipynb outside JupyterLab, "
                                f"run `python -m lab_support.notebook_pairs --from-ipynb "
                                f"{ipynb.relative_to(ROOT)}`.")
        elif write_pair_from_markdown(md, ipynb):
            print(f"wrote {ipynb.relative_to(ROOT)}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.check and not problems:
        print(f"{len(pairs())} notebook pairs agree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
