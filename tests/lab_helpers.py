"""Functions the lab tests and the smoke notebook serve.

They live in an importable module so ``host="process"`` can serve them too. Steps record
what really executed in files under a folder named in the event (``data.log_dir``), so
tests can tell a step that ran from one whose stored output was reused.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import inngest

APP_ID = "labtest"
client = inngest.Inngest(app_id=APP_ID, is_production=False)

# Flipped by tests/notebooks to "fix the bug" without editing this file.
SETTINGS = {"charge_fails": False}


def note(ctx: inngest.Context, step: str) -> None:
    """Append one line per real execution of ``step`` (never for a memo hit)."""
    folder = ctx.event.data.get("log_dir")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with open(Path(folder) / f"{ctx.run_id}.log", "a", encoding="utf-8") as fh:
            fh.write(step + "\n")


def executed(log_dir: str | Path, run_id: str) -> list[str]:
    path = Path(log_dir) / f"{run_id}.log"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def all_executed(log_dir: str | Path) -> list[str]:
    return [s for p in sorted(Path(log_dir).glob("*.log")) for s in p.read_text().split()]


@client.create_function(fn_id="order", trigger=inngest.TriggerEvent(event="lab/order"),
                        retries=1)
async def order(ctx: inngest.Context):
    """load → charge → sleep 4 h → receipt. ``charge`` fails while SETTINGS says so."""

    def load():
        note(ctx, "load")
        return {"customer": ctx.event.data.get("customer", "c-1")}

    def charge():
        note(ctx, "charge")
        if SETTINGS["charge_fails"] or ctx.event.data.get("fail"):
            raise ValueError("card declined (bug in the test worker)")
        return {"charged": ctx.event.data.get("amount", 10)}

    def receipt():
        note(ctx, "receipt")
        return "receipt sent"

    customer = await ctx.step.run("load", load)
    paid = await ctx.step.run("charge", charge)
    await ctx.step.sleep("cool-off", datetime.timedelta(hours=4))
    sent = await ctx.step.run("receipt", receipt)
    return {"customer": customer["customer"], "paid": paid["charged"], "receipt": sent}


@client.create_function(fn_id="approval", trigger=inngest.TriggerEvent(event="lab/approval"))
async def approval(ctx: inngest.Context):
    """Waits up to a day for a decision: a run that stays open until cancelled or timed out."""
    decision = await ctx.step.wait_for_event(
        "decision", event="lab/decided", if_exp="async.data.ticket == event.data.ticket",
        timeout=datetime.timedelta(days=1))
    return {"approved": bool(decision and decision.data.get("ok"))}


@client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="lab/slow"), retries=3)
async def slow(ctx: inngest.Context):
    """prepare → work (long; the place to kill the host) → done."""

    def prepare():
        note(ctx, "prepare")
        return "prepared"

    def work():
        note(ctx, "work")
        marker = ctx.event.data.get("marker")
        if marker and not Path(marker).exists():
            Path(marker).write_text(json.dumps({"run_id": ctx.run_id}))
            time.sleep(float(ctx.event.data.get("work_s", 30)))  # killed during this
        return "worked"

    first = await ctx.step.run("prepare", prepare)
    second = await ctx.step.run("work", work)
    return [first, second]


FUNCTIONS = [order, approval, slow]
