"""The engine client against a fake server: cache busting, error bodies, lab-only calls."""

import json

import httpx
import pytest

from lab_support.client import EngineClient, LabClientError, NotOnRealServer, parse_time


def fake(kind="embedded", log=None):
    def handler(request: httpx.Request) -> httpx.Response:
        if log is not None:
            log.append(request)
        path = request.url.path
        if path == "/dev":
            info = {"version": "0.1"} | ({"engine": "embedded"} if kind == "embedded" else {})
            return httpx.Response(200, json=info)
        if path.startswith("/v1/events/"):
            # The real server answers GET errors with HTTP 200 and the status in the body.
            return httpx.Response(200, json={"error": "Event not found", "data": None,
                                             "status": 404})
        if path == "/v0/gql":
            query = json.loads(request.content)["query"]
            if "runTrace" in query:
                return httpx.Response(200, json={"errors": [{"message": "no root span"}],
                                                 "data": None})
            return httpx.Response(200, json={"data": {"functions": [
                {"id": "u1", "slug": "app-a", "name": "a", "app": {"externalID": "app"}}]}})
        if path.startswith("/e/"):
            body = json.loads(request.content)
            return httpx.Response(200, text=json.dumps({"ids": [f"E{i}" for i in range(len(body))],
                                                        "status": 200}))
        if path == "/lab/v1/clock":
            return httpx.Response(200, json={"mode": "virtual", "now": "2026-01-01T00:00:00Z"})
        return httpx.Response(404, text="nope")
    return EngineClient("http://engine", transport=httpx.MockTransport(handler))


def test_every_get_has_a_unique_query_string():
    log = []
    api = fake(log=log)
    api.info(refresh=True)
    api.info(refresh=True)
    gets = [r.url for r in log if r.method == "GET"]
    assert len(gets) == 2 and gets[0] != gets[1]
    assert all("_=" in str(u) for u in gets)


def test_error_in_a_200_body_is_raised():
    with pytest.raises(LabClientError, match="Event not found"):
        fake().event_runs("01ABC")


def test_graphql_errors_are_raised_with_their_message():
    with pytest.raises(LabClientError, match="no root span"):
        fake().trace("01ABC")


def test_function_id_lookup_lists_known_slugs():
    api = fake()
    assert api.function_id("app-a") == "u1"
    with pytest.raises(LabClientError, match="known: app-a"):
        api.function_id("app-b")


def test_send_returns_one_id_per_event():
    assert fake().send([{"name": "a"}, {"name": "b"}]) == ["E0", "E1"]


def test_engine_kind_and_lab_only_calls():
    assert fake("embedded").kind == "embedded"
    assert fake("embedded").lab_get("clock", "clock")["mode"] == "virtual"
    real = fake("real")
    assert real.kind == "real"
    with pytest.raises(NotOnRealServer, match="only in the lab's embedded engine"):
        real.lab_get("clock", "The virtual clock")


def test_parse_time_handles_nanoseconds_and_z():
    t = parse_time("2026-11-24T11:07:47.217123456Z")
    assert (t.microsecond, t.utcoffset().total_seconds()) == (217123, 0)
    assert parse_time(None) is None


def test_a_real_servers_shuffled_trace_reads_in_start_order():
    # The real dev server lists step spans (and their copies) in a different order on each
    # read; the client puts them in start order, so lab.trace shows execution order and a
    # settled trace reads the same twice.
    starts = {"load": "2026-12-02T07:05:17.107Z", "agent": "2026-12-02T07:05:17.412Z",
              "save": "2026-12-02T07:05:19.056Z"}
    orders = iter([["save", "agent", None, "load"], ["agent", None, "load", "save"]] * 5)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/dev":
            return httpx.Response(200, json={"version": "real"})
        spans = [{"name": "planned", "stepID": "x", "startedAt": None} if step is None else
                 {"name": step, "stepID": step, "startedAt": starts[step], "attempts": 0,
                  "childrenSpans": [{"name": "Attempt 1", "startedAt": "2026-12-02T07:05:20Z"},
                                    {"name": "Attempt 0", "startedAt": starts[step]}]}
                 for step in next(orders)]
        return httpx.Response(200, json={"data": {"runTrace": {"name": "run",
                                                               "childrenSpans": spans}}})

    api = EngineClient("http://engine", transport=httpx.MockTransport(handler))
    trace = api.trace("R1", settle=True)
    assert [s["name"] for s in trace["childrenSpans"]] == ["load", "agent", "save", "planned"]
    assert [a["name"] for a in trace["childrenSpans"][0]["childrenSpans"]] == [
        "Attempt 0", "Attempt 1"]


def test_a_status_the_server_cannot_filter_on_is_filtered_by_the_client():
    # A real dev server has no SKIPPED in its runs filter: it drops that status and answers
    # every run (nb 11 printed "skipped runs: 400" there). The client keeps only the asked
    # statuses, reading page after page.
    statuses = ["COMPLETED"] * 250 + ["SKIPPED"] * 3 + ["COMPLETED"] * 50
    asked = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/dev":
            return httpx.Response(200, json={"version": "real"})
        variables = json.loads(request.content)["variables"]
        asked.append(variables["filter"].get("status"))
        start = int(variables["after"] or 0)
        nodes = [{"id": f"R{n}", "status": statuses[n], "output": '"ok"'}
                 for n in range(start, min(start + variables["first"], len(statuses)))]
        end = start + len(nodes)
        return httpx.Response(200, json={"data": {"runs": {
            "edges": [{"cursor": node["id"], "node": node} for node in nodes],
            "pageInfo": {"hasNextPage": end < len(statuses), "endCursor": str(end)}}}})

    api = EngineClient("http://engine", transport=httpx.MockTransport(handler))
    skipped = api.runs(status=["SKIPPED"])
    assert [r["id"] for r in skipped] == ["R250", "R251", "R252"]
    assert asked and all(a == ["SKIPPED"] for a in asked)  # still asked of the server
    assert len(api.runs(limit=120)) == 120  # no status: the limit as before
