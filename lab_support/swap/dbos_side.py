"""Drive the DBOS half of the swap from a kernel: the worker process and its system database.

* ``system_db()``: where DBOS keeps its checkpoints: the Worker's own Postgres (the embedded
  one, or ``DATABASE_URL``), in a schema of its own (``swap_dbos``), so "same database,
  second engine" is literal and a reset of the Worker's data leaves DBOS's state alone.
* ``DBOSWorker``: the worker process (``python -m lab_support.swap.dbos_email``): ``start()``
  waits for its ready line, ``wait_exit()`` notices a crash, ``kill()`` is a SIGKILL from
  outside, ``stop()`` a SIGTERM. Every wait has a timeout and says what it waited for.
* ``DBOSSide``: what the kernel does through a ``DBOSClient`` (no DBOS runtime in the
  kernel): ``send`` enqueues one workflow per email with the email id as workflow id (a second
  send of the same id attaches to the first, as an Inngest event id dedupes), ``wait`` polls
  its status, ``steps`` lists its checkpoints.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from . import crash
from .dbos_email import APP_NAME, DECISION_TOPIC, GATE, QUEUE, READY, WORKFLOW

SCHEMA = "swap_dbos"
FINISHED = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
START_TIMEOUT_S = 60


class DBOSSideError(RuntimeError):
    """The DBOS side did not do what was asked in time; the message says what to check."""


def system_db() -> str:
    from customer_data_mcp import db

    return db.database_url()


def drop_state(url: str | None = None) -> None:
    """Forget every DBOS workflow (drop the schema). Only while no worker runs."""
    import psycopg

    with psycopg.connect(url or system_db(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')


class DBOSWorker:
    def __init__(self, url: str, log_path: Path) -> None:
        self.url, self.log_path = url, Path(log_path)
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._offset = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT_S) -> "DBOSWorker":
        """Start the process and wait until it serves the queue."""
        return self.launch().wait_ready(timeout)

    def launch(self) -> "DBOSWorker":
        """Start the process without waiting (``wait_ready`` waits)."""
        if self.alive:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "a", encoding="utf-8")
        log.write(f"--- start {self.starts + 1}\n")
        log.flush()
        self._offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lab_support.swap.dbos_email", "--system-db", self.url,
             "--schema", SCHEMA],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        log.close()
        self.starts += 1
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> "DBOSWorker":
        if self.proc is None:
            raise DBOSSideError("the DBOS worker was never started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")[self._offset:]
            if READY in text:
                return self
            if self.proc.poll() is not None:
                raise DBOSSideError(f"the DBOS worker exited ({self.proc.returncode}) before "
                                    f"it was ready:\n{text[-2000:]}")
            time.sleep(0.1)
        self.kill()
        raise DBOSSideError(f"the DBOS worker was not ready within {timeout:.0f} s; its log: "
                            f"{self.log_path}")

    def wait_exit(self, timeout: float = 60) -> int:
        """Wait for the process to end by itself (a crash); its exit code (-9: SIGKILL)."""
        if self.proc is None:
            raise DBOSSideError("the DBOS worker was never started")
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DBOSSideError(f"the DBOS worker was still running after {timeout:.0f} s; "
                                f"nothing reached the armed crash point {crash.armed()}") from None

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if not self.alive:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


class DBOSSide:
    """The kernel's view of DBOS: a worker process and a client on its system database."""

    def __init__(self, log_path: Path, url: str | None = None) -> None:
        logging.getLogger("dbos").setLevel(logging.ERROR)
        self.url = url or system_db()
        self.worker = DBOSWorker(self.url, log_path)
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from dbos import DBOSClient

            self._client = DBOSClient(system_database_url=self.url, dbos_system_schema=SCHEMA,
                                      application_name=APP_NAME)
        return self._client

    def reset(self) -> None:
        """No worker, no workflows: the DBOS side as new."""
        self.close()
        self.worker.stop()
        drop_state(self.url)

    def start(self) -> "DBOSSide":
        self.worker.start()
        return self

    def send(self, email_id: str, data: dict) -> str:
        """Enqueue the email flow for one email (the workflow id is the email's id)."""
        options = {"workflow_name": WORKFLOW, "queue_name": QUEUE, "workflow_id": email_id,
                   "queue_partition_key": str(data["customer_id"])}
        return self.client.enqueue(options, data).get_workflow_id()

    def request_approval(self, request_id: str, customer_id: str, timeout_s: float) -> str:
        """Start the approval gate (it waits ``timeout_s`` wall-clock seconds at most)."""
        options = {"workflow_name": GATE, "queue_name": QUEUE, "workflow_id": request_id,
                   "queue_partition_key": customer_id}
        request = {"customer_id": customer_id, "timeout_s": timeout_s}
        return self.client.enqueue(options, request).get_workflow_id()

    def decide(self, request_id: str, decision: str, reviewer: str) -> None:
        """The reviewer's click: a message to that workflow's id (DBOS's send/recv)."""
        self.client.send(request_id, {"decision": decision, "reviewer": reviewer},
                         DECISION_TOPIC, idempotency_key=f"decision-{request_id}")

    def status(self, workflow_id: str):
        found = self.client.list_workflows(workflow_ids=[workflow_id], load_input=False)
        return found[0] if found else None

    def wait(self, workflow_id: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = self.status(workflow_id)
            if status is not None and status.status in FINISHED:
                return status
            if not self.worker.alive:
                raise DBOSSideError(f"workflow {workflow_id} is "
                                    f"{status.status if status else 'not started'} and no DBOS "
                                    "worker is running: start one (it recovers the workflow)")
            time.sleep(0.1)
        raise DBOSSideError(f"workflow {workflow_id} still "
                            f"{status.status if status else 'not started'} after {timeout:.0f} s "
                            f"(worker log: {self.worker.log_path})")

    def steps(self, workflow_id: str) -> list[dict]:
        return self.client.list_workflow_steps(workflow_id)

    def close(self) -> None:
        if self._client is not None:
            self._client.destroy()
            self._client = None

    def stop(self) -> None:
        self.close()
        self.worker.stop()
