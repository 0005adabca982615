"""How stored things look on the wire (REST v1 records, trace spans), shared by REST,
GraphQL, the lab API and the MCP tools."""

from __future__ import annotations

from .ids import DEV_ENV_ID, DEV_ACCOUNT_ID, rfc3339
from .models import Event, Run, Step


def event_record(e: Event) -> dict:
    out = {"internal_id": e.internal_id, "account_id": DEV_ACCOUNT_ID,
           "environment_id": DEV_ENV_ID, "source": "", "source_id": None,
           "received_at": rfc3339(e.received_at), "id": e.id, "name": e.name, "data": e.data,
           "user": e.user or {}, "ts": e.ts}
    if e.v is not None:
        out["v"] = e.v
    return out


def run_record(run: Run, *, with_output: bool = True) -> dict:
    out = {"run_id": run.run_id, "run_started_at": rfc3339(run.started_at or run.queued_at),
           "function_id": run.fn_id, "function_version": run.fn_version,
           "environment_id": DEV_ENV_ID, "event_id": run.event_ids[0] if run.event_ids else None,
           "status": run.status, "ended_at": rfc3339(run.ended_at)}
    if run.batch_id:
        out["batch_id"] = run.batch_id
    if run.original_run_id:
        out["original_run_id"] = run.original_run_id
    if run.cron:
        out["cron"] = run.cron
    if with_output:
        out["output"] = run.output
    return out


def lab_run_record(run: Run) -> dict:
    """REST record plus what a learner's view needs (lab API only)."""
    out = run_record(run)
    out.update(function_slug=run.fn_slug, event_name=run.events[0].get("name") if run.events
               else None, queued_at=rfc3339(run.queued_at), started_at=rfc3339(run.started_at),
               skip_reason=run.skip_reason, ended_reason=run.ended_reason,
               event_ids=run.event_ids, step_count=len(run.steps))
    return out


def ordered_steps(run: Run) -> list[Step]:
    return [run.steps[h] for h in run.step_order if h in run.steps]
