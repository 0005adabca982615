"""The email flow as a DBOS workflow: the second engine of the swap (notebook 25).

DBOS is a library, not a server: the workflow runs inside this process, which checkpoints
each step's output in a Postgres "system database" (here a database of its own on the
Worker's embedded Postgres). Started again after a crash, ``DBOS.launch()`` finds the
workflows this executor left PENDING and runs them again from the top; every step that had
finished returns its checkpoint instead of running.

    python -m lab_support.swap.dbos_email --system-db postgresql://...

runs the worker: it serves the ``emails`` queue (the trigger: a ``DBOSClient`` in the kernel
enqueues one workflow per email, the email's id as workflow id) until SIGTERM. The queue
carries the flow control the Inngest function declares: 10 at once, 2 per customer (a
partitioned queue, one partition per customer) and 100 starts a minute.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from dbos import DBOS
from customer_data_mcp.client import ToolInputError

from . import email_steps as steps

ENGINE = "dbos"
APP_NAME = "swap-dbos"
QUEUE = "emails"
WORKFLOW = "email_flow"
GATE = "approval_gate"
DECISION_TOPIC = "decision"
READY = "dbos worker ready"
QUEUE_SETTINGS = {"global_concurrency": 10, "partition_concurrency": 2,
                  "limiter": {"limit": 100, "period": 60.0}}


def _transient(exc: BaseException) -> bool:
    """DBOS retries a step while this says yes (the Inngest side: NonRetriableError)."""
    return not isinstance(exc, (ToolInputError, *steps.PERMANENT))


RETRY = {"retries_allowed": True, "max_attempts": 4, "interval_seconds": 0.5,
         "backoff_rate": 2.0, "should_retry": _transient}


@DBOS.step(name="load-customer", **RETRY)
async def load_customer(customer_id: str) -> dict:
    return await steps.load_customer(ENGINE, customer_id)


@DBOS.step(name="load-thread", **RETRY)
async def load_thread(customer_id: str) -> dict:
    return await steps.load_thread(ENGINE, customer_id)


@DBOS.step(name="run-agent", **RETRY)
async def run_agent(customer: dict, thread: dict, email: dict) -> dict:
    return await steps.run_agent(ENGINE, customer, thread, email)


@DBOS.step(name="save-draft-reply", **RETRY)
async def save_draft(customer_id: str, draft: str, thread: dict, source_id: str,
                     write_once: bool) -> dict:
    return await steps.save_draft(ENGINE, customer_id, draft, thread, source_id, write_once)


@DBOS.step(name="audit-handled", **RETRY)
async def audit(customer_id: str, source_id: str, draft_id: int, model: str) -> dict:
    return await steps.audit(ENGINE, customer_id, source_id, draft_id, model)


@DBOS.workflow(name=WORKFLOW)
async def email_flow(email: dict) -> dict:
    email = {**email, "source_id": DBOS.workflow_id}
    customer_id = email["customer_id"]
    customer = await load_customer(customer_id)
    thread = await load_thread(customer_id)
    result = await run_agent(customer, thread, email)
    draft = await save_draft(customer_id, result["draft"], thread, email["source_id"],
                             bool(email.get("write_once")))
    await audit(customer_id, email["source_id"], draft["id"], result["model"])
    return {"status": "drafted", "draft_id": draft["id"]}


@DBOS.step(name="audit-decision", **RETRY)
async def audit_decision(customer_id: str, request_id: str, decision: dict | None) -> dict:
    return await steps.audit_decision(ENGINE, customer_id, request_id, decision)


@DBOS.workflow(name=GATE)
async def approval_gate(request: dict) -> dict:
    """Inngest's ``step.wait_for_event(..., timeout=...)`` as DBOS writes it: the workflow
    waits for a message sent *to its own id* on a topic; ``None`` after the timeout. The wait
    is durable (a recovered workflow keeps waiting), but it runs on the wall clock."""
    decision = await DBOS.recv_async(DECISION_TOPIC, timeout_seconds=request["timeout_s"])
    row = await audit_decision(request["customer_id"], DBOS.workflow_id, decision)
    return {"decision": decision, "audit": row["action"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system-db", required=True, help="DBOS system database URL")
    parser.add_argument("--schema", default="dbos", help="schema for DBOS's tables")
    args = parser.parse_args(argv)
    logging.getLogger("dbos").setLevel(logging.WARNING)
    DBOS(config={"name": APP_NAME, "system_database_url": args.system_db,
                 "dbos_system_schema": args.schema, "log_level": "WARNING",
                 "executor_id": "swap-worker"})
    DBOS.launch()                       # recovers this executor's PENDING workflows
    DBOS.register_queue(QUEUE, polling_interval_sec=0.2, **QUEUE_SETTINGS)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(READY, flush=True)
    stop.wait()
    DBOS.destroy(workflow_completion_timeout_sec=0)


if __name__ == "__main__":
    main(sys.argv[1:])
