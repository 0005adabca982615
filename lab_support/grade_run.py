"""Run one notebook for the grader: ``python -m lab_support.grade_run SPEC.json``.

``lab_support.grade`` starts one of these processes per notebook. It is trusted and stays
outside the sandbox; it

1. makes itself a child subreaper, so whatever the notebook starts, even detached, stays
   its descendant and is killed before it exits;
2. builds the notebook to run: the submission with the source's check cells put back
   (``grade_notebook.restore_checks``) and papermill's parameter cell (``grading = True``,
   ``engine_url``) injected;
3. builds a throwaway ``Sandbox``, starts an embedded engine for this notebook (unless
   the spec names an engine URL) and reserves the kernel's ``PortBlock`` (Landlock ABI >= 4:
   the kernel may bind only those ports and connect only to them and its engine);
4. starts the kernel through the sandbox launcher and drives it with an nbclient
   ``NotebookClient`` subclass in this process, cell by cell: learner cells as they are (the
   first error stops the notebook, as "Run All" does), source check cells as instrumented
   code whose outcome tokens only this process knows (a failing check cell never stops it);
5. enforces the limits: a per-cell timeout and a whole-run deadline, the memory of the whole
   process tree (a watchdog, next to the kernel's own RLIMIT_AS), and the output received
   (kept up to the soft cap, then truncated; past the hard cap the run is stopped);
6. kills every process of the sandbox, stops the engine, removes the sandbox, and writes the
   executed notebook and ``result.json`` (status, detail, each check's outcome, records the
   notebook made that do not count, cells that were replaced).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from . import sandbox as sb
from .checks import CHECK_MIMETYPE
from .grade_notebook import (
    MARK_MIMETYPE,
    CheckCell,
    SourceError,
    instrument,
    is_check_cell,
    restore_checks,
    validate_source,
)

KERNEL_NAME = "lab-sandbox"
KERNEL_START_GRACE_S = 60
LOG_TAIL_BYTES = 64 * 1024
OUTPUT_KINDS = {"stream", "display_data", "execute_result", "error", "update_display_data"}


def message_bytes(msg: dict) -> int:
    """About how many bytes of output one iopub message carries."""
    content = msg.get("content") or {}
    total = len(content.get("text") or "")
    for value in (content.get("data") or {}).values():
        total += len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
    total += sum(len(line) for line in content.get("traceback") or [])
    if msg.get("msg_type", "").startswith("comm"):
        total += len(json.dumps(content.get("data"), default=str))
    return total + sum(len(b) for b in msg.get("buffers") or [])


class Limits:
    """What one run may use, and the first limit it hit (``stopped``)."""

    def __init__(self, spec: dict) -> None:
        self.cell_timeout = float(spec["timeout"])
        self.deadline = time.monotonic() + self.cell_timeout + KERNEL_START_GRACE_S
        self.memory_mb = int(spec["memory_mb"])
        self.soft_bytes = int(spec["output_mb"] * 1024 * 1024)
        self.hard_bytes = int(spec["output_hard_mb"] * 1024 * 1024)
        self.stopped: tuple[str, str] | None = None
        self._lock = threading.Lock()

    def stop(self, status: str, detail: str) -> bool:
        with self._lock:
            if self.stopped is None:
                self.stopped = (status, detail)
                return True
            return False


class GradingClient(NotebookClient):
    """nbclient's client with output caps and the grader's check tokens."""

    def __init__(self, nb, km, *, plan: dict[str, CheckCell], limits: Limits,
                 kill, **kwargs) -> None:
        super().__init__(nb, km=km, timeout=int(max(1, limits.cell_timeout)),
                         startup_timeout=KERNEL_START_GRACE_S, kernel_name=KERNEL_NAME,
                         allow_errors=False, record_timing=False, **kwargs)
        self.plan = plan
        self.limits = limits
        self.kill = kill
        self.received = 0
        self.kept = 0
        self.truncated = False
        self.current: CheckCell | None = None
        self.verdicts: dict[str, dict] = {}  # check name -> {"outcome", "reason"}
        self.ran: set[str] = set()  # check cell ids that were sent to the kernel
        self.records: list[dict] = []  # lab.check records seen: {"record", "cell", "check"}
        self.left_running = 0  # processes still alive besides the kernel when it ended

    def process_message(self, msg, cell, cell_index):
        kind = msg["msg_type"]
        if kind not in OUTPUT_KINDS and not kind.startswith("comm"):
            return super().process_message(msg, cell, cell_index)
        size = message_bytes(msg)
        self.received += size
        if self.received > self.limits.hard_bytes:
            # A busy kernel can flush a flood as one message past both caps at once: the
            # saved notebook must still say where its output was cut.
            self._mark_truncated(cell)
            if self.limits.stop("output limit", f"the notebook printed more than "
                                f"{self.limits.hard_bytes / 2**20:g} MB; the run was stopped"):
                self.kill()
            return None
        data = msg["content"].get("data") or {}
        if kind == "display_data" and MARK_MIMETYPE in data:
            self._token(data[MARK_MIMETYPE])
            return None  # never saved: the executed notebook must not leak the tokens
        if kind == "display_data" and isinstance(data.get(CHECK_MIMETYPE), dict):
            self.records.append({"record": data[CHECK_MIMETYPE], "cell": cell_index,
                                 "check": self.current.cell_id if self.current else None})
        if self.kept + size > self.limits.soft_bytes and kind != "error":
            self._mark_truncated(cell)
            return None
        self.kept += size
        return super().process_message(msg, cell, cell_index)

    def _mark_truncated(self, cell) -> None:
        if not self.truncated:
            self.truncated = True
            cell.outputs.append(nbformat.v4.new_output(
                "stream", name="stderr",
                text=f"[grader: output truncated here; a notebook keeps at most "
                     f"{self.limits.soft_bytes / 2**20:g} MB of output]\n"))

    def _token(self, payload) -> None:
        if self.current is None or not isinstance(payload, dict):
            return  # a token outside a check cell is not one the grader sent
        mark = self.current.marks.get(payload.get("token"))
        if mark is None:
            return
        name, outcome = mark
        reason = payload.get("reason") if isinstance(payload.get("reason"), str) else ""
        self.verdicts[name] = {"outcome": outcome, "reason": reason[:1000]}

    async def run_cells(self) -> tuple[str, str]:
        """Every cell in order. A learner's cell that raises does not stop the notebook (as
        nbgrader grades): the later tasks' checks still run, so a broken Task 2 costs only
        what depends on it. The first error is the notebook's status. A MemoryError stops
        it (the process is at its limit); timeouts and a dead kernel stop it by raising."""
        first_error = None
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code":
                continue
            check = self.plan.get(cell.get("id"))
            if check is None:
                self.allow_errors = True
                try:
                    await self.async_execute_cell(cell, index)
                finally:
                    self.allow_errors = False
                error = _error_of(cell)
                if error and error.get("ename") == "MemoryError":
                    return "memory limit", (f"MemoryError{_where(cell)}: a process may use at "
                                            f"most {self.limits.memory_mb} MB")
                if error and first_error is None:
                    first_error = (f"{error.get('ename', '')}: {error.get('evalue', '')}"
                                   .strip(": ")[:500] + _where(cell))
                continue
            original, cell.source = cell.source, check.code
            self.current, self.allow_errors = check, True
            try:
                self.ran.add(check.cell_id)
                await self.async_execute_cell(cell, index)
            finally:
                cell.source = original
                self.current, self.allow_errors = None, False
        if first_error is not None:
            return "error", (first_error + "; the notebook went on: later cells ran and "
                             "their checks counted")
        return "completed", ""


def _error_of(cell) -> dict | None:
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def _where(cell) -> str:
    count = cell.get("execution_count")
    return f" (in cell In [{count}])" if count else ""


def _cell_number(nb, exc: CellExecutionError) -> str:
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") == exc.ename:
                count = cell.get("execution_count")
                return f" (in cell In [{count}])" if count else ""
    return ""


class KernelLog:
    """Keeps the head and the tail of what the kernel writes to stdout/stderr."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.thread: threading.Thread | None = None

    def follow(self, stream) -> None:
        def pump():
            for chunk in iter(lambda: stream.read1(65536), b""):
                if len(self.head) < LOG_TAIL_BYTES:
                    self.head += chunk[: LOG_TAIL_BYTES - len(self.head)]
                self.tail.append(chunk)
                self.tail_size += len(chunk)
                while self.tail_size > LOG_TAIL_BYTES and len(self.tail) > 1:
                    self.tail_size -= len(self.tail.popleft())
        self.thread = threading.Thread(target=pump, daemon=True, name="kernel-log")
        self.thread.start()

    def text(self) -> str:
        tail = b"".join(self.tail)[-LOG_TAIL_BYTES:]
        if len(self.head) >= LOG_TAIL_BYTES:
            return (bytes(self.head).decode(errors="replace") + "\n[...]\n"
                    + tail.decode(errors="replace"))
        return tail.decode(errors="replace")


def _watch(limits: Limits, find, kill, done: threading.Event) -> None:
    while not done.wait(0.5):
        if time.monotonic() > limits.deadline:
            if limits.stop("timeout", f"the notebook ran longer than "
                           f"{limits.cell_timeout + KERNEL_START_GRACE_S:g} s"):
                kill()
        elif sb.tree_memory_mb(find()) > limits.memory_mb:
            if limits.stop("memory limit", f"the notebook's processes used more than "
                           f"{limits.memory_mb} MB together; the run was stopped"):
                kill()


def _kernel_spec(private: Path, policy_file: Path, kernel: str) -> KernelSpecManager:
    inner = KernelSpecManager().get_kernel_spec(kernel)
    argv = list(inner.argv)
    if argv and Path(argv[0]).name in {"python", "python3", f"python3.{sys.version_info[1]}"}:
        argv[0] = sys.executable
    folder = private / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps({
        "argv": sb.launcher(policy_file, argv), "display_name": f"{inner.display_name} (sandbox)",
        "language": inner.language, "interrupt_mode": "signal", "metadata": {}}))
    return KernelSpecManager(kernel_dirs=[str(private / "kernels")], ensure_native_kernel=False)


def url_ports(url: str) -> list[int]:
    """The TCP port of ``url`` (the engine the kernel must reach), or none."""
    if not url:
        return []
    parts = urlsplit(url)
    try:
        return [parts.port or (443 if parts.scheme == "https" else 80)]
    except ValueError:
        return []


def load(spec: dict) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """The submission and its source (the submission itself when it *is* the source);
    SourceError when the source declares checks the grader cannot score."""
    submitted = nbformat.read(spec["notebook"], as_version=4)
    source = nbformat.read(spec["source"], as_version=4) if spec.get("source") else submitted
    validate_source(source)
    return submitted, source


def prepare(submitted, source, engine_url: str
            ) -> tuple[nbformat.NotebookNode, dict[str, CheckCell], list[str]]:
    """The notebook to run, its instrumented check cells, and the replaced cells."""
    from papermill.parameterize import parameterize_notebook

    nb, dropped = restore_checks(submitted, source)
    check_ids = {c.get("id") for c in source.cells if is_check_cell(c)}
    for cell in nb.cells:  # as papermill's own loader does, so it can find tagged cells
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})
    nb.metadata.setdefault("kernelspec", {"name": "python3", "language": "python",
                                          "display_name": "Python 3"})
    nb = parameterize_notebook(nb, {"grading": True, "engine_url": engine_url})
    plan = {c.get("id"): instrument(c) for c in nb.cells if c.get("id") in check_ids}
    return nb, plan, dropped


async def _drive(client: GradingClient, env: dict, cwd: Path, log: KernelLog) -> tuple[str, str]:
    await client.async_start_new_kernel(env=env, cwd=str(cwd), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
    log.follow(client.km.provisioner.process.stdout)
    try:
        await client.async_start_new_kernel_client()
    except RuntimeError as exc:
        return "kernel died", f"the kernel did not start: {exc}"
    try:
        return await client.run_cells()
    except CellTimeoutError:
        return "timeout", f"a cell ran longer than {client.limits.cell_timeout:g} s"
    except DeadKernelError:
        return "kernel died", "the kernel exited while a cell was running"
    except CellExecutionError as exc:
        where = _cell_number(client.nb, exc)
        if exc.ename == "MemoryError":
            return "memory limit", (f"MemoryError{where}: a process may use at most "
                                    f"{client.limits.memory_mb} MB")
        return "error", f"{exc.ename}: {exc.evalue}".strip(": ")[:500] + where


def run(spec: dict) -> dict:
    sb.become_subreaper()
    result: dict = {"status": "completed", "detail": "", "verdicts": {}, "ran": [],
                    "records": [], "dropped": [], "notes": []}
    try:
        submitted, source = load(spec)
    except SourceError as exc:
        return dict(result, status="source error", detail=str(exc))
    except Exception as exc:
        return dict(result, status="unreadable", detail=f"not a readable notebook: {exc}")
    private = Path(spec["private_dir"])
    private.mkdir(parents=True, exist_ok=True)
    box = engine = ports = None
    limits = Limits(spec)
    log = KernelLog()
    done = threading.Event()

    def engine_pids() -> list[int]:
        return [engine.proc.pid] if engine and engine.proc else []

    def sandboxed():
        return sb.descendants(exclude=engine_pids())

    def kill():
        sb.kill_all(sandboxed)

    try:
        box = sb.Sandbox.create(Path(spec["sandbox_base"]), spec["sandbox_name"],
                                Path(spec["copy"]))
        url = spec["engine_url"]
        if spec["engine"] == "embedded":
            from .engine_process import EngineError, EngineProcess

            try:
                engine = EngineProcess(memory=True).start()
            except (EngineError, OSError) as exc:
                return dict(result, status="engine error",
                            detail=f"embedded engine did not start: {exc}")
            url = engine.url
        if sb.net_confinable(spec["confine"]):
            ports = sb.reserve_ports()
        policy = box.policy(memory_mb=limits.memory_mb, file_mb=spec["file_mb"],
                            confine=spec["confine"], protected=map(Path, spec["protected"]),
                            ports=ports, connect=url_ports(url) + spec.get("allow_ports", []))
        result["confined"], result["net_confined"] = policy["confined"], policy["net_confined"]
        policy_file = box.write_policy(policy, private / "policy.json")
        nb, plan, result["dropped"] = prepare(submitted, source, url)
        km = AsyncKernelManager(kernel_name=KERNEL_NAME,
                                kernel_spec_manager=_kernel_spec(private, policy_file,
                                                                 spec["kernel"]))
        km.connection_file = str(box.runtime / "kernel.json")
        extra = {"LAB_ENGINE_URL": url, "LAB_GRADING": "1"}
        if ports:  # the only ports this kernel may bind: its channels, then LAB_PORTS
            km.cache_ports = False  # else the provisioner picks ephemeral ports itself
            for channel, port in ports.channels.items():
                setattr(km, channel, port)
            extra["LAB_PORTS"] = ports.spare
        client = GradingClient(nb, km, plan=plan, limits=limits, kill=kill)
        env = box.env(extra, spec.get("pass_env", []))
        watchdog = threading.Thread(target=_watch, args=(limits, sandboxed, kill, done),
                                    daemon=True, name="grade-watchdog")
        watchdog.start()
        try:
            status, detail = asyncio.run(_run_and_clean(client, env, box.submission, log,
                                                        sandboxed))
        finally:
            done.set()
            watchdog.join(5)
        if limits.stopped:
            status, detail = limits.stopped
        last = [line for line in log.text().splitlines() if line.strip()][-1:]
        if status == "kernel died" and "did not start" in detail and last:
            detail += f"; the kernel's last words: {last[0].strip()[:300]}"
        result.update(status=status, detail=detail, verdicts=client.verdicts,
                      ran=sorted(client.ran), records=client.records,
                      truncated=client.truncated, output_bytes=client.received)
        if client.left_running:
            result["notes"].append(f"killed {client.left_running} process(es) the notebook "
                                   "left running")
        _save(client.nb, Path(spec["executed"]))
    except sb.SandboxError as exc:
        result.update(status="sandbox error", detail=str(exc))
    except Exception as exc:  # the grader's own failure: say so, and keep the traceback
        traceback.print_exc()
        result.update(status="grader error", detail=f"{type(exc).__name__}: {exc}")
    finally:
        done.set()
        sb.kill_all(sandboxed)
        if engine:
            engine.stop()
        sb.kill_all(sb.descendants)
        if ports:
            ports.release()
        Path(spec["log"]).write_text(log.text(), encoding="utf-8")
        if box and not spec.get("keep_sandbox"):
            box.remove()
    return result


async def _run_and_clean(client: GradingClient, env, cwd, log, sandboxed) -> tuple[str, str]:
    try:
        return await _drive(client, env, cwd, log)
    finally:
        kernel = client.km.provisioner.process if client.km and client.km.provisioner else None
        kernel_pid = kernel.pid if kernel else None
        left = [p for p in sandboxed() if p.pid != kernel_pid]
        client.left_running = len(left)
        sb.kill_all(sandboxed)
        try:
            await client._async_cleanup_kernel()
        except Exception:
            pass  # the kernel is gone already; nothing else to release


def _save(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m lab_support.grade_run SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result = run(spec)
    target = Path(spec["result"])
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(result, default=str), encoding="utf-8")
    os.replace(partial, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
