"""Notebook 06's five-step email function, in a file so that it can run in its own process.

``lab.start([handle_email], host="process")`` serves it from a separate Python process, which
``lab.kill_host()`` can kill in the middle of a step (course Concept 6, scenario B): the
engine keeps the run and the outputs of the steps that finished, so a new process picks up
where the old one died.

How the notebook sees what really ran: every step body appends one line (run, step, attempt,
process id) to the file named by the ``C06_STEP_LOG`` environment variable before it does its
work. A step answered from the memo never runs its body, so it writes nothing.

Faults are scripted through the event, so they behave the same in any process and on any
engine:

* ``data["fail"] = {"run-agent": 1}`` makes the first attempt of ``run-agent`` raise
  (``ctx.attempt`` counts the attempts of the step being executed, from 0);
* ``data["hang_in"] = "save-draft-reply"`` makes that step hang the first time its body runs
  in this run, so the process can be killed while the step is in flight.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path

import inngest

client = inngest.Inngest(app_id="step-run-lab", is_production=False)
HANG_S = 120  # far longer than the notebook waits before it kills the process


class ModelTimeout(Exception):
    """The model did not answer in time (scenario A)."""


class SlackUnavailable(Exception):
    """Slack answered 503 Service Unavailable (scenario C)."""


FAULTS = {"run-agent": (ModelTimeout, "the model did not answer within 30 s"),
          "notify-reviewer": (SlackUnavailable, "Slack answered 503 Service Unavailable")}


def log_path() -> Path:
    try:
        return Path(os.environ["C06_STEP_LOG"])
    except KeyError:
        raise RuntimeError("set os.environ['C06_STEP_LOG'] to a file path before lab.start: "
                           "the step bodies write what they run there") from None


def executed(run_id: str | None = None) -> list[dict]:
    """The log lines (one per step body that really ran), oldest first."""
    path = log_path()
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [line for line in lines if run_id is None or line["run"] == run_id]


def counts(run_id: str) -> dict[str, int]:
    """How often each step body ran in one run."""
    return dict(Counter(line["step"] for line in executed(run_id)))


def wait_until_running(run_id: str, step: str, timeout: float = 30.0) -> None:
    """Block until ``step``'s body has started in ``run_id`` (it logs before it works)."""
    deadline = time.monotonic() + timeout
    while not any(line["step"] == step for line in executed(run_id)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"step {step!r} of run {run_id} did not start within {timeout:.0f} s; "
                               f"steps that ran: {counts(run_id)}. Is the process host up "
                               "(lab.status())?")
        time.sleep(0.05)


def _record(ctx: inngest.Context, step: str) -> bool:
    """Log one real execution; True if this step body already ran earlier in this run."""
    ran_before = any(line["step"] == step for line in executed(ctx.run_id))
    with log_path().open("a", encoding="utf-8") as log:
        log.write(json.dumps({"run": ctx.run_id, "step": step, "attempt": ctx.attempt,
                              "pid": os.getpid()}) + "\n")
    return ran_before


async def _step_body(ctx: inngest.Context, step: str) -> None:
    """What every step does before its own work: log, then the scripted fault if any."""
    ran_before = _record(ctx, step)
    if ctx.event.data.get("hang_in") == step and not ran_before:
        await asyncio.sleep(HANG_S)  # the process is killed while it waits here
    if ctx.attempt < int((ctx.event.data.get("fail") or {}).get(step, 0)):
        error, message = FAULTS.get(step, (RuntimeError, "scripted failure"))
        raise error(f"{message} (attempt {ctx.attempt + 1})")


@client.create_function(fn_id="customer-support-conversation",
                        trigger=inngest.TriggerEvent(event="customer/email.received"))
async def handle_email(ctx: inngest.Context) -> dict:
    customer_id = ctx.event.data["customer_id"]

    async def load_customer() -> dict:
        await _step_body(ctx, "load-customer")
        return {"id": customer_id, "name": "Sara", "tier": "pro"}

    async def load_thread() -> list:
        await _step_body(ctx, "load-thread")
        return [{"from": "customer", "text": ctx.event.data.get("body", "Where is my refund?")}]

    async def run_agent(customer: dict, thread: list) -> dict:
        await _step_body(ctx, "run-agent")
        return {"draft": f"Hi {customer['name']}, your refund left us today.", "tokens": 910}

    async def save_draft_reply(text: str) -> dict:
        await _step_body(ctx, "save-draft-reply")
        return {"draft_id": f"draft-{ctx.run_id[-6:]}", "chars": len(text)}

    async def notify_reviewer(draft: dict) -> dict:
        await _step_body(ctx, "notify-reviewer")
        return {"channel": "#support-review", "draft_id": draft["draft_id"]}

    customer = await ctx.step.run("load-customer", load_customer)
    thread = await ctx.step.run("load-thread", load_thread)
    response = await ctx.step.run("run-agent", run_agent, customer, thread)
    draft = await ctx.step.run("save-draft-reply", save_draft_reply, response["draft"])
    await ctx.step.run("notify-reviewer", notify_reviewer, draft)
    return {"status": "drafted", "reviewer_notified": True}
