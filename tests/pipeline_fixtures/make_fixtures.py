"""Regenerate the small notebooks the pipeline tests grade (run from the repo root).

    python tests/pipeline_fixtures/make_fixtures.py

solutions/fizz.ipynb is the one source; exercises/fizz.ipynb comes from it through
lab_support.assign (an untouched exercise); submissions/<who>/fizz.ipynb are learner
versions: alice is right, bob breaks with an error, carol loops, dave kills his kernel.
engine/engine_ping.ipynb is the only one that talks to the embedded engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from lab_support import assign  # noqa: E402

PARAMETERS = 'grading = False\nengine_url = ""'
FIZZ = ('def fizz(n):\n    # BEGIN SOLUTION\n    return "Fizz" if n % 3 == 0 else str(n)\n'
        '    # END SOLUTION')
TOTAL = 'def total(values):\n    # BEGIN SOLUTION\n    return sum(values)\n    # END SOLUTION'
CHECK_FIZZ = ('with check("fizz of 3", points=2, hint="Multiples of 3 say Fizz."):\n'
              '    assert fizz(3) == "Fizz"')
HIDDEN = '# HIDDEN CHECK\nwith check("fizz of 4 (hidden)", points=1):\n    assert fizz(4) == "4"'
CHECK_TOTAL = ('@check("total adds", points=1, hint="Use sum().")\ndef _():\n'
               '    assert total([1, 2, 3]) == 6')


def notebook(name: str, sources: list[str]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                  "language": "python"},
                   "language_info": {"name": "python"}}
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name} (pipeline test fixture)")]
    for source in sources:
        cell = nbformat.v4.new_code_cell(source)
        if source == PARAMETERS:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    for index, cell in enumerate(nb.cells):
        cell.id = f"{name.replace('_', '-')}-{index}"  # stable ids: hidden checks anchor on them
    return nb


def learner(sources: list[str], **replace: str) -> nbformat.NotebookNode:
    """The exercise with some cells swapped, like a learner's saved notebook."""
    nb = assign.make_exercise(notebook("fizz", sources), "fizz.ipynb")
    for index, text in replace.items():
        nb.cells[int(index[1:])].source = text
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(assign.dumps(nb), encoding="utf-8")


def main() -> None:
    solution = [PARAMETERS, "from lab_support.checks import check", FIZZ, CHECK_FIZZ, HIDDEN,
                TOTAL, CHECK_TOTAL]
    write(assign.clean_notebook(notebook("fizz", solution), "fizz.ipynb"),
          HERE / "solutions" / "fizz.ipynb")
    assign.write_exercises(HERE / "solutions", HERE / "exercises")
    right_fizz = 'def fizz(n):\n    return "Fizz" if n % 3 == 0 else str(n)'
    right_total = "def total(values):\n    return sum(values)"
    # Exercise cells: 0 title, 1 parameters, 2 import, 3 fizz, 4 check, 5 total, 6 check.
    write(learner(solution, c3=right_fizz, c5=right_total), HERE / "submissions/alice/fizz.ipynb")
    write(learner(solution, c3="def fizz(n):\n    return str(n)",
                  c5=right_total + "\nprint(undefined_name)"), HERE / "submissions/bob/fizz.ipynb")
    write(learner(solution, c3=right_fizz, c5=right_total + "\nwhile True:\n    pass"),
          HERE / "submissions/carol/fizz.ipynb")
    write(learner(solution, c3=right_fizz, c5="import os\nos._exit(1)"),
          HERE / "submissions/dave/fizz.ipynb")
    write(assign.clean_notebook(notebook("engine_ping", [
        PARAMETERS,
        "import os\nimport httpx\nfrom lab_support.checks import check\n"
        'url = os.environ["LAB_ENGINE_URL"]',
        'with check("grader injected parameters"):\n    assert grading is True and engine_url == url',
        'with check("engine answers", points=2):\n'
        '    info = httpx.get(url + "/dev", timeout=10).json()\n'
        '    assert info["engine"] == "embedded"',
        'with check("fresh engine per notebook"):\n'
        '    runs = httpx.get(url + "/lab/v1/runs", timeout=10).json()["data"]\n'
        '    assert runs == [], runs',
    ]), "engine_ping.ipynb"), HERE / "engine" / "engine_ping.ipynb")


if __name__ == "__main__":
    main()
