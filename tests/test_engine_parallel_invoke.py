"""Parallel invokes (``ctx.group.parallel`` of ``step.invoke``): the SDK reports all the
invokes in one answer, and the run must be called again only when the last child has
answered, as the dev server does. Otherwise the next call reports the other invokes again
and each of them starts a second child run (notebook 05, exercise 05 Task 3)."""

from __future__ import annotations

import inngest

from engine_helpers import gql, make_client, send, serving, trace, wait_run_for_event

CHILD_RUNS = """query($fn: [UUID!]) { runs(filter: {from: "2000-01-01T00:00:00Z",
  functionIDs: $fn}, orderBy: [{field: QUEUED_AT, direction: DESC}], first: 100) {
  edges { node { id eventName output } } } }"""


def test_three_parallel_invokes_start_three_children(fresh_engine):
    client = make_client(fresh_engine)

    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="t/never"))
    async def child(ctx: inngest.Context) -> str:
        return await ctx.step.run("answer", lambda: ctx.event.data["who"].upper())

    @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="t/parallel"))
    async def parent(ctx: inngest.Context) -> list:
        return list(await ctx.group.parallel(tuple(
            (lambda who=who: ctx.step.invoke(f"ask-{who}", function=child, data={"who": who}))
            for who in ("a", "b", "c"))))

    with serving(fresh_engine, client, [child, parent]):
        result = wait_run_for_event(fresh_engine, send(fresh_engine, "t/parallel"))
        assert result["status"] == "Completed", result
        assert result["output"] == ["A", "B", "C"]
        functions = gql(fresh_engine, "{ functions { id slug } }")["functions"]
        child_id = next(f["id"] for f in functions if f["slug"] == "test-app-child")
        children = [e["node"] for e in gql(fresh_engine, CHILD_RUNS, fn=[child_id])["runs"]["edges"]]
        assert sorted(c["output"] for c in children) == ['"A"', '"B"', '"C"'], children
        spans = trace(fresh_engine, result["run_id"])["trace"]["childrenSpans"]
        assert {s["name"]: s["status"] for s in spans} == {
            "ask-a": "COMPLETED", "ask-b": "COMPLETED", "ask-c": "COMPLETED"}
