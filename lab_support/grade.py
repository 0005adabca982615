"""Grade notebook submissions by running each one in a throwaway sandbox.

    python -m lab_support.grade SUBMISSION... --out DIR [--timeout S] [--self-check]
        [--source DIR|none] [--engine embedded|none] [--engine-url URL] [--jobs N]
        [--memory-mb N] [--output-mb N] [--output-hard-mb N] [--file-mb N]
        [--confine auto|landlock|none] [--sandbox-dir DIR] [--keep-sandboxes]
        [--pass-env NAME] [--kernel NAME]

A SUBMISSION is a notebook (named after the file; copied alone into its sandbox) or a
folder of notebooks (named after the folder; copied whole, with the files beside them).
Every notebook is graded against the same-named notebook in ``--source`` (default
``solutions/``): the source says which checks exist and what they are worth, and its check
cells (visible and hidden) are the ones that run, whatever the submission did with its
copies. A notebook with no source is listed as ``no source`` and not run (``--source none``
grades notebooks on their own checks, for ad-hoc use).

Each notebook runs in its own process (``lab_support.grade_run``) with its own sandbox
(``lab_support.sandbox``), its own embedded engine (or ``--engine-url``) and its own limits;
only that process's observations score, never a file or a record the notebook wrote. See
docs/grading.md for isolation, limits, statuses and the trust model.

Writes ``DIR/grades.csv`` (submission, notebook, check, points, max, hint, status; cells
escaped against spreadsheet formulas), ``DIR/report.html``, the executed notebooks under
``DIR/executed/`` and logs under ``DIR/logs/``. ``--self-check`` grades ``--source`` and
exits 1 unless every notebook ran to the end with full marks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nbformat
import psutil

from . import sandbox as sb
from .grade_notebook import CheckSpec, SourceError, check_specs, validate_source
from .report import EXECUTION_ROW, GradeRow, write_csv, write_report

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TIMEOUT_S = 300
DEFAULT_MEMORY_MB = 4096
DEFAULT_OUTPUT_MB = 20
DEFAULT_OUTPUT_HARD_MB = 100
DEFAULT_FILE_MB = 1024
JOB_GRACE_S = 180  # beyond the notebook's own deadline: engine start, clean-up, saving
KILL_WAIT_S = 10


@dataclass
class NotebookJob:
    submission: str
    path: Path
    out: Path
    copy: Path  # what goes into the sandbox: the submission's folder, or the notebook alone

    @property
    def stem(self) -> str:
        return f"{self.submission}/{self.path.stem}"

    def file(self, folder: str, suffix: str) -> Path:
        target = self.out / folder / self.submission / (self.path.stem + suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


@dataclass
class Settings:
    timeout: float = DEFAULT_TIMEOUT_S
    source_dir: Path | None = ROOT / "solutions"
    engine_mode: str = "embedded"  # embedded | none | url
    engine_url: str = ""
    kernel: str = "python3"
    memory_mb: int = DEFAULT_MEMORY_MB
    output_mb: float = DEFAULT_OUTPUT_MB
    output_hard_mb: float = DEFAULT_OUTPUT_HARD_MB
    file_mb: int = DEFAULT_FILE_MB
    confine: str = "auto"
    sandbox_dir: Path | None = None
    keep_sandboxes: bool = False
    pass_env: tuple[str, ...] = ()
    honour_skips: bool = False  # only against a real dev server can a check be "skipped"


@dataclass
class Outcome:
    status: str  # completed | error | timeout | memory limit | output limit | kernel died |
    #              engine error | unreadable | no source | source error | sandbox error | ...
    detail: str = ""
    rows: list[GradeRow] = field(default_factory=list)


# -- finding work ---------------------------------------------------------------------------

def find_jobs(submissions: list[Path], out: Path) -> list[NotebookJob]:
    jobs: list[NotebookJob] = []
    taken: set[str] = set()
    for target in submissions:
        if target.is_dir():
            notebooks = sorted(p for p in target.glob("*.ipynb"))
            name, copy = target.resolve().name, target
        elif target.suffix == ".ipynb" and target.is_file():
            notebooks, name = [target], target.stem
            copy = target
        else:
            raise SystemExit(f"{target}: not a notebook or a folder of notebooks")
        if not notebooks:
            raise SystemExit(f"{target}: no .ipynb files in it")
        unique, n = name, 2
        while unique in taken:  # two folders called "alice" must not overwrite each other
            unique, n = f"{name}-{n}", n + 1
        taken.add(unique)
        jobs += [NotebookJob(unique, nb, out, copy) for nb in notebooks]
    return jobs


def declared_checks(nb: nbformat.NotebookNode) -> dict[str, float]:
    """Checks written as ``check("name", points=N)`` / ``lab.check(...)`` with literal args."""
    return {name: spec.points for name, spec in check_specs(nb).items()}


def source_for(job: NotebookJob, source_dir: Path | None) -> tuple[Path | None, str]:
    """(source path or None when the notebook is its own source, problem or "")."""
    if source_dir is None:
        return None, ""
    path = source_dir / job.path.name
    if not path.is_file():
        return None, f"no notebook named {job.path.name} in {source_dir}: nothing to grade it against"
    if path.resolve() == job.path.resolve():
        return None, ""
    return path, ""


# -- running one notebook -------------------------------------------------------------------

class RunningJobs:
    """The grading processes running now. With ``--jobs N`` one job's stray cleanup must spare
    the others' process trees; a job registers its process under the lock it spawns under, so
    a cleanup never sees a job that has started and is not yet registered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pids: set[int] = set()


def run_notebook(job: NotebookJob, settings: Settings, base: Path, protected: list[Path],
                 index: int, running: RunningJobs | None = None) -> Outcome:
    source, problem = source_for(job, settings.source_dir)
    if problem:
        outcome = Outcome("no source", problem)
        outcome.rows = [_execution_row(job, outcome)]
        return outcome
    try:
        specs = validate_source(nbformat.read(str(source or job.path), as_version=4))
    except SourceError as exc:
        return _stopped(job, "source error", f"{source}: {exc}", {})
    except Exception as exc:
        specs = {}
        if source is not None:
            return _stopped(job, "source error", f"{source} is not readable: {exc}", {})
        return _stopped(job, "unreadable", f"not a readable notebook: {exc}", specs)

    work = job.out / ".work" / f"{index:04d}"
    work.mkdir(parents=True, exist_ok=True)
    result_file = work / "result.json"
    result_file.unlink(missing_ok=True)
    executed = job.file("executed", ".ipynb")
    executed.unlink(missing_ok=True)
    spec = {
        "notebook": str(job.path), "source": str(source) if source else None,
        "copy": str(job.copy), "executed": str(executed), "result": str(result_file),
        "log": str(job.file("logs", ".kernel.log")), "private_dir": str(work),
        "sandbox_base": str(base), "sandbox_name": f"{index:04d}-{job.submission}"[:80],
        "timeout": settings.timeout, "memory_mb": settings.memory_mb,
        "output_mb": settings.output_mb, "output_hard_mb": settings.output_hard_mb,
        "file_mb": settings.file_mb, "confine": settings.confine,
        "engine": settings.engine_mode, "engine_url": settings.engine_url,
        "kernel": settings.kernel, "protected": [str(p) for p in protected],
        "pass_env": list(settings.pass_env), "keep_sandbox": settings.keep_sandboxes,
    }
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    status = _run_job(spec_file, job.file("logs", ".grader.log"),
                      settings.timeout + JOB_GRACE_S, running or RunningJobs())
    if status:
        return _stopped(job, *status, specs)
    try:
        result = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return _stopped(job, "grader error", f"the grading process left no result ({exc}); "
                        f"see {job.file('logs', '.grader.log')}", specs)
    detail = "; ".join(x for x in [result.get("detail", ""), *result.get("notes", [])] if x)
    outcome = Outcome(result["status"], detail)
    outcome.rows = score_rows(job, specs, result, outcome, settings.honour_skips)
    annotate(executed, outcome, result)
    return outcome


def _run_job(spec_file: Path, log: Path, limit: float,
             running: RunningJobs) -> tuple[str, str] | None:
    """Run ``grade_run`` on one spec; a (status, detail) only when that process failed."""
    cmd = [sys.executable, "-m", "lab_support.grade_run", str(spec_file)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]))
    env.pop("INNGEST_DEV", None)
    with open(log, "w", encoding="utf-8") as log_fh:
        with running.lock:
            proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            running.pids.add(proc.pid)
        try:
            code = proc.wait(limit)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            return "timeout", f"the grading process was stopped after {limit:g} s"
        finally:
            with running.lock:
                running.pids.discard(proc.pid)
    if code != 0:
        return "grader error", f"the grading process exited with code {code}; see {log}"
    return None


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill a process and every descendant it has (they may sit in sessions of their own)."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.kill()
    proc.wait(KILL_WAIT_S)
    psutil.wait_procs(family, timeout=KILL_WAIT_S)


def _execution_row(job: NotebookJob, outcome: Outcome) -> GradeRow:
    return GradeRow(job.submission, job.path.name, EXECUTION_ROW, 0, 0, outcome.detail,
                    outcome.status)


def _stopped(job: NotebookJob, status: str, detail: str,
             specs: dict[str, CheckSpec]) -> Outcome:
    outcome = Outcome(status, detail)
    outcome.rows = score_rows(job, specs, {}, outcome, False)
    return outcome


# -- scoring --------------------------------------------------------------------------------

def score_rows(job: NotebookJob, specs: dict[str, CheckSpec], result: dict,
               outcome: Outcome, honour_skips: bool) -> list[GradeRow]:
    """One row per check the source declares, at the source's points, from what the grader
    saw; records the notebook made for other names are listed as ``ignored`` (0 of 0)."""
    verdicts = result.get("verdicts", {})
    ran = set(result.get("ran", []))
    own = {}  # what lab.check itself displayed inside the grader's check cells
    for seen in result.get("records", []):
        record = seen.get("record", {})
        if seen.get("check") and isinstance(record.get("name"), str):
            own[record["name"]] = record
    rows = [_execution_row(job, outcome)]
    for name, spec in specs.items():
        verdict = verdicts.get(name)
        record = own.get(name, {})
        message = record.get("message") if isinstance(record.get("message"), str) else ""
        if verdict and verdict["outcome"] == "passed":
            rows.append(GradeRow(job.submission, job.path.name, name, spec.points, spec.points,
                                 "", "passed"))
            continue
        if verdict and verdict["outcome"] == "skipped" and honour_skips:
            rows.append(GradeRow(job.submission, job.path.name, name, 0, 0,
                                 verdict.get("reason", ""), "skipped"))
            continue
        if verdict is None and spec.cell_id not in ran:
            rows.append(GradeRow(job.submission, job.path.name, name, 0, spec.points,
                                 "not reached: the notebook stopped before this check",
                                 "not reached"))
            continue
        why = message or (verdict or {}).get("reason") or \
            "the check did not finish (its cell stopped before the check's end)"
        if record.get("passed") is True:
            why += " [the check's own display said passed, but the grader saw otherwise: " \
                   "lab.check looks patched]"
        rows.append(GradeRow(job.submission, job.path.name, name, 0, spec.points,
                             "; ".join(x for x in (why, spec.hint) if x), "failed"))
    ignored = []
    for seen in result.get("records", []):
        name = seen.get("record", {}).get("name")
        if isinstance(name, str) and name.strip() not in specs and name not in ignored:
            ignored.append(name)
    rows += [GradeRow(job.submission, job.path.name, name[:200], 0, 0,
                      "recorded by the notebook, not a check of this exercise: not counted",
                      "ignored") for name in ignored]
    return rows


def annotate(executed: Path, outcome: Outcome, result: dict) -> None:
    """Store the grading summary in the executed notebook's metadata."""
    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:
        return
    nb.metadata["lab"] = dict(nb.metadata.get("lab", {}), grading={
        "status": outcome.status, "detail": outcome.detail,
        "confined": result.get("confined"), "replaced_cells": result.get("dropped", []),
        "checks": [{"check": r.check, "points": r.points, "max": r.max, "status": r.status}
                   for r in outcome.rows if r.check != EXECUTION_ROW]})
    nbformat.write(nb, str(executed))


# -- the whole run --------------------------------------------------------------------------

def engine_kind(url: str) -> str:
    """"embedded" or "real" for the server at ``url``; SystemExit when nothing answers."""
    try:
        info = httpx.get(url.rstrip("/") + "/dev", timeout=10).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SystemExit(f"--engine-url {url}: no engine answers GET /dev ({exc})") from exc
    return "embedded" if isinstance(info, dict) and info.get("engine") == "embedded" else "real"


def grade(submissions: list[Path], out: Path, *, timeout: float = DEFAULT_TIMEOUT_S,
          source_dir: Path | None = ROOT / "solutions", engine_mode: str = "embedded",
          kernel: str = "python3", jobs: int = 1, engine_url: str = "",
          settings: Settings | None = None) -> list[Outcome]:
    settings = settings or Settings()
    settings.timeout, settings.source_dir, settings.kernel = timeout, source_dir, kernel
    settings.engine_mode = "url" if engine_url else engine_mode
    settings.engine_url = engine_url.rstrip("/")
    if engine_url:
        settings.honour_skips = engine_kind(engine_url) == "real"
    out.mkdir(parents=True, exist_ok=True)
    work = find_jobs(submissions, out)
    protected = [ROOT, out.resolve(), *(p.resolve() for p in submissions)]
    if source_dir:
        protected.append(source_dir.resolve())
    owned_base = settings.sandbox_dir is None
    base = Path(tempfile.mkdtemp(prefix="lab-grade-")) if owned_base else settings.sandbox_dir
    base.mkdir(parents=True, exist_ok=True)
    adopted = sb.become_subreaper()
    running = RunningJobs()

    def one(numbered: tuple[int, NotebookJob]) -> Outcome:
        index, job = numbered
        before = {p.pid for p in psutil.Process().children()}
        outcome = run_notebook(job, settings, base, protected, index, running)
        if adopted:
            # the other jobs' process trees are theirs; what is left outside them is a stray
            with running.lock:
                strays = sb.kill_all(lambda: [p for p in sb.descendants(exclude=running.pids)
                                              if p.pid not in before])
            if strays:
                outcome.detail += f"; killed {strays} process(es) that outlived the notebook"
        earned = sum(r.points for r in outcome.rows)
        worth = sum(r.max for r in outcome.rows)
        print(f"{job.stem}: {outcome.status} {earned:g}/{worth:g}"
              + (f" ({outcome.detail})" if outcome.detail else ""), flush=True)
        return outcome

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            outcomes = list(pool.map(one, enumerate(work)))
    finally:
        if owned_base and not settings.keep_sandboxes:
            sb.Sandbox(base).remove()
    rows = [row for outcome in outcomes for row in outcome.rows]
    confinement = ("Landlock ABI %d" % sb.landlock_abi() if settings.confine != "none"
                   and sb.landlock_abi() else "none (file access is not confined)")
    write_csv(rows, out / "grades.csv")
    write_report(rows, out / "report.html", notes=[
        f"Sandbox confinement: {confinement}; memory {settings.memory_mb} MB, output "
        f"{settings.output_mb:g} MB kept / {settings.output_hard_mb:g} MB stops the run, "
        f"cell timeout {settings.timeout:g} s."])
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
                        help="seconds a cell may run; the notebook gets 60 s more in all "
                             "(default %(default)s)")
    parser.add_argument("--self-check", action="store_true",
                        help="grade the source notebooks and exit 1 unless full marks")
    parser.add_argument("--source", default=str(ROOT / "solutions"),
                        help="complete notebooks: check cells and points (default solutions/); "
                             "'none' grades notebooks on their own checks")
    parser.add_argument("--engine", choices=("embedded", "none"), default="embedded",
                        help="start an embedded engine per notebook (default) or none")
    parser.add_argument("--engine-url", default="",
                        help="grade against this running engine or real dev server instead")
    parser.add_argument("--kernel", default="python3", help="kernelspec to run (in the sandbox)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once")
    parser.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB,
                        help="memory for the notebook's processes together, and address space "
                             "for each (default %(default)s)")
    parser.add_argument("--output-mb", type=float, default=DEFAULT_OUTPUT_MB,
                        help="output kept in the executed notebook (default %(default)s)")
    parser.add_argument("--output-hard-mb", type=float, default=DEFAULT_OUTPUT_HARD_MB,
                        help="output that stops the run (default %(default)s)")
    parser.add_argument("--file-mb", type=int, default=DEFAULT_FILE_MB,
                        help="largest file the notebook may write (default %(default)s)")
    parser.add_argument("--confine", choices=sb.CONFINE_MODES, default="auto",
                        help="Landlock file confinement: auto (when available), landlock "
                             "(required), none")
    parser.add_argument("--sandbox-dir", type=Path, default=None,
                        help="where sandboxes are made (default: a new temporary folder)")
    parser.add_argument("--keep-sandboxes", action="store_true", help="keep them afterwards")
    parser.add_argument("--pass-env", action="append", default=[], metavar="NAME",
                        help="pass this environment variable to kernels (none are by default)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.memory_mb < 256 or args.output_mb <= 0 or args.output_hard_mb < args.output_mb:
        parser.error("--memory-mb must be >= 256 and 0 < --output-mb <= --output-hard-mb")
    source = None if args.source.lower() == "none" else Path(args.source)
    if source is not None and not source.is_dir():
        parser.error(f"--source {source}: no such folder (use --source none to grade "
                     "notebooks on their own checks)")
    if args.engine_url and not args.engine_url.startswith(("http://", "https://")):
        parser.error("--engine-url must be an http(s) URL")
    if args.confine == "landlock" and sb.landlock_abi() < 1:
        parser.error("--confine landlock: Landlock is not available on this machine")
    if args.confine == "auto" and sb.landlock_abi() < 1:
        print("warning: Landlock is not available here: submissions can read and write "
              "anything this user can (see docs/grading.md)", file=sys.stderr)
    submissions = list(args.submissions)
    if args.self_check:
        if source is None:
            parser.error("--self-check needs --source")
        submissions = submissions or [source]
    if not submissions:
        parser.error("give at least one SUBMISSION (or --self-check)")
    settings = Settings(memory_mb=args.memory_mb, output_mb=args.output_mb,
                        output_hard_mb=args.output_hard_mb, file_mb=args.file_mb,
                        confine=args.confine, sandbox_dir=args.sandbox_dir,
                        keep_sandboxes=args.keep_sandboxes, pass_env=tuple(args.pass_env))
    outcomes = grade(submissions, args.out, timeout=args.timeout, source_dir=source,
                     engine_mode=args.engine, kernel=args.kernel, jobs=args.jobs,
                     engine_url=args.engine_url, settings=settings)
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
