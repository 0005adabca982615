"""Grade notebook submissions by running them, and collect every ``lab.check`` result.

    python -m lab_support.grade SUBMISSION... --out DIR [--timeout S] [--self-check]

A SUBMISSION is a notebook (the submission is named after the file) or a folder of
notebooks (named after the folder). Each notebook runs with papermill in its own
subprocess (kernel ``python3``), next to its own embedded engine on a free port whose URL
reaches the kernel as ``LAB_ENGINE_URL``; papermill also injects ``grading=True`` and
``engine_url``. A notebook that raises, loops past ``--timeout`` or kills its kernel is
scored on the checks that ran; the others are not affected.

Hidden checks (see ``lab_support.checks``) are taken from the matching notebook in
``--source`` (default ``solutions/``) and put back before the run, and that notebook also
says which checks exist and what they are worth, so a check that never ran scores 0.

Writes ``DIR/grades.csv`` (submission, notebook, check, points, max, hint, status),
``DIR/report.html``, the executed notebooks under ``DIR/executed/`` and papermill logs
under ``DIR/logs/``. ``--self-check`` grades ``solutions/`` and exits 1 unless every
notebook ran to the end with full marks.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil

from .checks import CHECK_MIMETYPE, CHECKS_FILE_ENV, is_hidden_check_cell
from .engine_process import EngineError, EngineProcess
from .report import EXECUTION_ROW, GradeRow, write_csv, write_report

ROOT = Path(__file__).resolve().parents[1]
ENGINE_URL_ENV = "LAB_ENGINE_URL"
DEFAULT_TIMEOUT_S = 300
KERNEL_START_GRACE_S = 60  # the hard limit leaves room for a slow kernel start
KILL_WAIT_S = 10


@dataclass
class NotebookJob:
    submission: str
    path: Path
    out: Path

    @property
    def stem(self) -> str:
        return f"{self.submission}/{self.path.stem}"

    def file(self, folder: str, suffix: str) -> Path:
        target = self.out / folder / self.submission / (self.path.stem + suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


@dataclass
class Outcome:
    status: str  # completed | error | timeout | kernel died | engine error | unreadable
    detail: str = ""
    rows: list[GradeRow] = field(default_factory=list)


# -- finding work ---------------------------------------------------------------------------

def find_jobs(submissions: list[Path], out: Path) -> list[NotebookJob]:
    jobs: list[NotebookJob] = []
    taken: set[str] = set()
    for target in submissions:
        if target.is_dir():
            notebooks = sorted(p for p in target.glob("*.ipynb"))
            name = target.resolve().name
        elif target.suffix == ".ipynb" and target.is_file():
            notebooks, name = [target], target.stem
        else:
            raise SystemExit(f"{target}: not a notebook or a folder of notebooks")
        if not notebooks:
            raise SystemExit(f"{target}: no .ipynb files in it")
        unique, n = name, 2
        while unique in taken:  # two folders called "alice" must not overwrite each other
            unique, n = f"{name}-{n}", n + 1
        taken.add(unique)
        jobs += [NotebookJob(unique, nb, out) for nb in notebooks]
    return jobs


def declared_checks(nb: nbformat.NotebookNode) -> dict[str, float]:
    """Checks written as ``check("name", points=N)`` / ``lab.check(...)`` with literal args."""
    found: dict[str, float] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        # IPython magics and shell lines are not Python; blank them so the rest parses.
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                         for line in cell.source.splitlines())
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _is_check_call(node.func) and node.args):
                continue
            name = node.args[0]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                continue
            points: object = 1
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                points = node.args[1].value
            for kw in node.keywords:
                if kw.arg == "points" and isinstance(kw.value, ast.Constant):
                    points = kw.value.value
            if isinstance(points, (int, float)) and not isinstance(points, bool):
                found[name.value.strip()] = float(points)
    return found


def _is_check_call(func: ast.expr) -> bool:
    return ((isinstance(func, ast.Name) and func.id == "check")
            or (isinstance(func, ast.Attribute) and func.attr == "check"))


def restore_hidden_checks(submission: nbformat.NotebookNode,
                          source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Put the source's hidden-check cells back after the cell that precedes them there."""
    nb = copy.deepcopy(submission)
    present_ids = {c.get("id") for c in nb.cells}
    present_src = {c.source.strip() for c in nb.cells}
    anchor: str | None = None
    for cell in source.cells:
        if not is_hidden_check_cell(cell):
            anchor = cell.get("id")
            continue
        if cell.get("id") in present_ids or cell.source.strip() in present_src:
            continue  # already there (a solution graded as a submission)
        hidden = copy.deepcopy(cell)
        hidden.outputs, hidden.execution_count = [], None
        positions = [i for i, c in enumerate(nb.cells) if anchor and c.get("id") == anchor]
        index = positions[0] + 1 if positions else len(nb.cells)
        nb.cells.insert(index, hidden)
        anchor = hidden.get("id")
        present_ids.add(anchor)
    return nb


# -- running one notebook -------------------------------------------------------------------

def run_notebook(job: NotebookJob, source_dir: Path | None, timeout: float,
                 engine_mode: str, kernel: str) -> Outcome:
    source = read_source(source_dir, job.path)
    try:
        submitted = nbformat.read(str(job.path), as_version=4)
    except Exception as exc:
        outcome = Outcome("unreadable", f"not a readable notebook: {exc}")
        outcome.rows = score_rows(job, declared_checks(source) if source else {}, [], outcome)
        return outcome
    expected = declared_checks(submitted)
    if source is not None:
        submitted = restore_hidden_checks(submitted, source)
        expected = declared_checks(source)  # the source sets what checks exist and their worth
    prepared, executed = job.file("inputs", ".ipynb"), job.file("executed", ".ipynb")
    checks_file, log = job.file("checks", ".jsonl"), job.file("logs", ".log")
    nbformat.write(submitted, str(prepared))
    for stale in (executed, checks_file):
        stale.unlink(missing_ok=True)

    engine = None
    if engine_mode == "embedded":
        try:
            engine = EngineProcess(memory=True).start()
        except (EngineError, OSError) as exc:
            outcome = Outcome("engine error", f"embedded engine did not start: {exc}")
            outcome.rows = score_rows(job, expected, [], outcome)
            return outcome
    try:
        status, detail = execute(job, prepared, executed, checks_file, log, timeout, kernel,
                                 engine.url if engine else "")
    finally:
        if engine:
            engine.stop()
    outcome = Outcome(status, detail)
    records = collect_records(executed, checks_file)
    outcome.rows = score_rows(job, expected, records, outcome)
    annotate(executed, outcome)
    return outcome


def read_source(source_dir: Path | None, submission: Path) -> nbformat.NotebookNode | None:
    """The complete notebook this submission answers, unless it *is* that notebook."""
    path = source_dir / submission.name if source_dir else None
    if not path or not path.is_file() or path.resolve() == submission.resolve():
        return None
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as exc:
        print(f"warning: {path} is not readable ({exc}); grading without it", file=sys.stderr)
        return None


def execute(job: NotebookJob, prepared: Path, executed: Path, checks_file: Path, log: Path,
            timeout: float, kernel: str, engine_url: str) -> tuple[str, str]:
    env = dict(os.environ)
    env.pop("INNGEST_DEV", None)  # the lab client would treat it as a real dev server
    env.update({ENGINE_URL_ENV: engine_url, CHECKS_FILE_ENV: str(checks_file),
                "LAB_GRADING": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1",
                # the submission's predictions/progress stay out of the instructor's .lab
                "LAB_STATE_DIR": str(executed.parent / f"{executed.stem}-lab-state")})
    paths = [str(ROOT), str(ROOT / "src")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    cmd = [sys.executable, "-m", "papermill", str(prepared), str(executed), "-k", kernel,
           "--cwd", str(job.path.resolve().parent), "--no-progress-bar",
           "--request-save-on-cell-execute", "--autosave-cell-every", "5",
           "--execution-timeout", str(max(1, round(timeout))),
           "-p", "grading", "True", "-r", "engine_url", engine_url]
    with open(log, "w", encoding="utf-8") as log_fh:
        proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            code = proc.wait(timeout + KERNEL_START_GRACE_S)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            return "timeout", f"stopped after {timeout + KERNEL_START_GRACE_S:g} s"
    text = log.read_text(encoding="utf-8", errors="replace")
    if code == 0:
        return "completed", ""
    if "CellTimeoutError" in text or "A cell timed out" in text:
        return "timeout", f"a cell ran longer than {timeout:g} s"
    if "DeadKernelError" in text or "Kernel died" in text:
        return "kernel died", "the kernel exited while a cell was running"
    return "error", first_error(executed) or last_line(text)


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill papermill and its kernel (jupyter starts kernels in a session of their own)."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for p in [*family]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.kill()
    proc.wait(KILL_WAIT_S)
    psutil.wait_procs(family, timeout=KILL_WAIT_S)


def first_error(executed: Path) -> str:
    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:
        return ""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                what = f"{output.get('ename')}: {output.get('evalue')}".strip(": ")
                count = cell.get("execution_count")
                return f"{what} (in cell In [{count}])" if count else what
    return ""


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "papermill failed without output"


# -- collecting and scoring -----------------------------------------------------------------

def collect_records(executed: Path, checks_file: Path) -> list[dict]:
    """Check records from the executed notebook, or the JSON-lines file if it has more."""
    from_notebook: list[dict] = []
    try:
        nb = nbformat.read(str(executed), as_version=4)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                record = output.get("data", {}).get(CHECK_MIMETYPE)
                if isinstance(record, dict):
                    from_notebook.append(dict(record))
    except Exception:
        pass  # never written (e.g. killed before the first save): the file still has them
    from_file: list[dict] = []
    if checks_file.exists():
        for line in checks_file.read_text(encoding="utf-8").splitlines():
            try:
                from_file.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a half-written last line from a killed kernel
    # The file is written first on every check; the notebook may lag behind a hard kill.
    return from_file if len(from_file) >= len(from_notebook) else from_notebook


def score_rows(job: NotebookJob, expected: dict[str, float], records: list[dict],
               outcome: Outcome) -> list[GradeRow]:
    latest: dict[str, dict] = {}
    for record in records:
        if isinstance(record.get("name"), str):
            latest[record["name"]] = record  # a re-run check: the last result counts
    rows = [GradeRow(job.submission, job.path.name, EXECUTION_ROW, 0, 0, outcome.detail,
                     outcome.status)]
    for name in dict.fromkeys([*expected, *latest]):
        worth = expected.get(name, _num(latest.get(name, {}).get("max")))
        record = latest.get(name)
        if record is None:
            rows.append(GradeRow(job.submission, job.path.name, name, 0, worth,
                                 "not reached: the notebook stopped before this check",
                                 "not reached"))
        elif record.get("passed"):
            rows.append(GradeRow(job.submission, job.path.name, name, worth, worth, "", "passed"))
        else:
            why = "; ".join(x for x in (record.get("message"), record.get("hint")) if x)
            rows.append(GradeRow(job.submission, job.path.name, name, 0, worth, why, "failed"))
    return rows


def _num(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def annotate(executed: Path, outcome: Outcome) -> None:
    """Store the grading summary in the executed notebook's metadata."""
    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:
        return
    nb.metadata["lab"] = dict(nb.metadata.get("lab", {}), grading={
        "status": outcome.status, "detail": outcome.detail,
        "checks": [{"check": r.check, "points": r.points, "max": r.max, "status": r.status}
                   for r in outcome.rows if r.check != EXECUTION_ROW]})
    nbformat.write(nb, str(executed))


# -- command line ---------------------------------------------------------------------------

def grade(submissions: list[Path], out: Path, *, timeout: float = DEFAULT_TIMEOUT_S,
          source_dir: Path | None = ROOT / "solutions", engine_mode: str = "embedded",
          kernel: str = "python3", jobs: int = 1) -> list[Outcome]:
    out.mkdir(parents=True, exist_ok=True)
    work = find_jobs(submissions, out)

    def one(job: NotebookJob) -> Outcome:
        outcome = run_notebook(job, source_dir, timeout, engine_mode, kernel)
        earned = sum(r.points for r in outcome.rows)
        worth = sum(r.max for r in outcome.rows)
        print(f"{job.stem}: {outcome.status} {earned:g}/{worth:g}"
              + (f" ({outcome.detail})" if outcome.detail else ""), flush=True)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        outcomes = list(pool.map(one, work))
    rows = [row for outcome in outcomes for row in outcome.rows]
    write_csv(rows, out / "grades.csv")
    write_report(rows, out / "report.html")
    return outcomes


def self_check_problems(outcomes: list[Outcome]) -> list[str]:
    problems = []
    for outcome in outcomes:
        for row in outcome.rows:
            where = f"{row.submission}/{row.notebook}"
            if row.check == EXECUTION_ROW and row.status != "completed":
                problems.append(f"{where}: {row.status} {row.hint}".strip())
            elif row.check != EXECUTION_ROW and row.points < row.max:
                problems.append(f"{where}: check {row.check!r} {row.status} {row.hint}".strip())
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_support.grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder for grades and report")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds per notebook (default %(default)s)")
    parser.add_argument("--self-check", action="store_true",
                        help="grade solutions/ and exit 1 unless full marks")
    parser.add_argument("--source", type=Path, default=ROOT / "solutions",
                        help="complete notebooks: hidden checks and check list (default solutions/)")
    parser.add_argument("--engine", choices=("embedded", "none"), default="embedded",
                        help="start an embedded engine per notebook (default) or none")
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    submissions = list(args.submissions)
    if args.self_check:
        submissions = submissions or [args.source]
    if not submissions:
        parser.error("give at least one SUBMISSION (or --self-check)")
    outcomes = grade(submissions, args.out, timeout=args.timeout,
                     source_dir=args.source if args.source.is_dir() else None,
                     engine_mode=args.engine, kernel=args.kernel, jobs=args.jobs)
    print(f"wrote {args.out / 'grades.csv'} and {args.out / 'report.html'}")
    if args.self_check:
        problems = self_check_problems(outcomes)
        if not any(r.max > 0 for o in outcomes for r in o.rows):
            problems.append("no checks were found at all")
        for problem in problems:
            print(f"self-check: {problem}", file=sys.stderr)
        print("self-check: full marks" if not problems else "self-check: FAILED")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
