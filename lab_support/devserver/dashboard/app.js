// The lab engine's dashboard: plain DOM + fetch, talking only to the engine on this origin
// (REST /v1, GraphQL /v0/gql, lab API /lab/v1, events to /e/lab). No build step, no CDN.
"use strict";

const REFRESH_MS = 1000;
const TERMINAL = ["Completed", "Failed", "Cancelled", "Skipped"];
const RUN_STATUSES = ["Scheduled", "Running", "Completed", "Failed", "Cancelled", "Skipped"];
// GraphQL spells run statuses as an enum; the REST records use these words.
const GQL_STATUS = {QUEUED: "Scheduled", RUNNING: "Running", COMPLETED: "Completed",
  FAILED: "Failed", CANCELLED: "Cancelled", SKIPPED: "Skipped"};

const RUN_QUERY = `query($id: String!) {
  run(runID: $id) {
    id status queuedAt startedAt endedAt output
    function { slug name }
    trace {
      outputID
      childrenSpans {
        name status stepOp stepID attempts memoized queuedAt startedAt endedAt duration outputID
        stepInfo {
          __typename
          ... on SleepStepInfo { sleepUntil }
          ... on WaitForEventStepInfo { eventName expression timeout foundEventID timedOut }
          ... on InvokeStepInfo { functionID runID timedOut }
        }
        childrenSpans { name status startedAt endedAt outputID }
      }
    }
  }
}`;
const SPAN_OUTPUT_QUERY = `query($id: String!) {
  runTraceSpanOutputByID(outputID: $id) { data error { message name stack } } }`;
const TRIGGER_QUERY = `query($id: String!) {
  runTrigger(runID: $id) { eventName IDs payloads timestamp isBatch batchID cron } }`;
const FUNCTIONS_QUERY = `query { functions { id slug name triggers { type value } app { name } } }`;

// ---------------------------------------------------------------- small helpers

/** Build an element: h("a", {href: "#", "data-testid": "x", onclick: fn}, "text", child). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "className") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function fmtTime(value) {
  if (!value) return "";
  const date = new Date(typeof value === "number" ? value : String(value));
  if (isNaN(date)) return String(value);
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function spanMs(start, end) {
  if (!start || !end) return null;
  return new Date(end) - new Date(start);
}

function statusWord(status) {
  return GQL_STATUS[status] || status || "Unknown";
}

function badge(status, testid) {
  const word = statusWord(status);
  return h("span", {className: `badge status-${word.toLowerCase()}`, "data-testid": testid,
                    "data-status": word}, word);
}

function pretty(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch (_) { return value; }
  }
  return JSON.stringify(value, null, 2);
}

/** Parse a textarea's JSON; empty means {}. Throws a readable error otherwise. */
function parseJsonObject(text, what) {
  if (!text.trim()) return {};
  let value;
  try { value = JSON.parse(text); } catch (err) {
    throw new Error(`${what} is not valid JSON: ${err.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`${what} must be a JSON object, like {"id": 1}`);
  }
  return value;
}

let flashTimer = null;

/** Show a message under the header; errors stay until the next message, notes fade.
 *  `origin` names what raised it (a view's refresh): that origin's next success clears it. */
function flash(message, kind = "info", origin = "") {
  const box = document.getElementById("flash");
  clearTimeout(flashTimer);
  box.hidden = false;
  box.className = `flash ${kind}`;
  box.dataset.kind = kind;
  box.dataset.origin = origin;
  box.textContent = message;
  if (kind !== "error") flashTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

/** Hide an error banner: any error (on a new page), or only one the given origin raised
 *  (its next success). Notes are left to fade on their own. */
function clearFlash(origin) {
  const box = document.getElementById("flash");
  if (box.dataset.kind !== "error") return;
  if (origin !== undefined && box.dataset.origin !== origin) return;
  clearTimeout(flashTimer);
  box.hidden = true;
  box.textContent = "";
  box.dataset.kind = "";
  box.dataset.origin = "";
}

// The words lab.trace uses (lab_support/tracing.py), so the two views never disagree.
const UNFINISHED = ["RUNNING", "QUEUED", "WAITING", "SLEEPING", "SCHEDULED"];

/** A step left unfinished by a run that ended takes the run's status (a cancelled run's
 *  sleep is Cancelled, not Running). */
function stepStatus(span, runStatus) {
  const run = statusWord(runStatus);
  if (TERMINAL.includes(run) && UNFINISHED.includes(span.status)) return runStatus;
  return span.status;
}

/** memo hit, cancelled, retried (more than one attempt), failed (its only attempt), executed. */
function stepSource(span, runStatus) {
  if (span.memoized) return "memo hit";
  const status = statusWord(stepStatus(span, runStatus));
  if (status === "Cancelled") return "cancelled";
  const attempts = span.attempts || (span.childrenSpans || []).length || 1;
  if (attempts > 1) return "retried";
  if (status === "Failed") return "failed";
  return "executed";
}

/** "Attempt 0" (the engine counts from 0, as the real server does) → "attempt 1". */
function attemptLabel(name) {
  const match = /^Attempt (\d+)$/.exec(name || "");
  return match ? `attempt ${Number(match[1]) + 1}` : name;
}

/** A view's title with its Refresh button beside it. */
function viewHead(title, testid, refresh) {
  return h("div", {className: "view-head"}, h("h2", {}, title),
    h("button", {"data-testid": testid, onclick: () => refresh()}, "Refresh"));
}

// ---------------------------------------------------------------- engine API

async function api(method, path, body) {
  const options = {method, headers: {}};
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const resp = await fetch(path, options);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  // REST v1 GETs answer HTTP 200 and carry the real status in the body.
  const inner = data && typeof data === "object" && typeof data.status === "number" ? data.status : 0;
  if (!resp.ok || inner >= 400) {
    const detail = (data && (data.error || data.message || data.detail)) || text || resp.statusText;
    throw new Error(`${method} ${path} failed (${inner || resp.status}): ${
      typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return data;
}

async function gql(query, variables = {}) {
  const body = await api("POST", "/v0/gql", {query, variables});
  if (body.errors && body.errors.length) {
    throw new Error("GraphQL: " + body.errors.map((e) => e.message).join("; "));
  }
  return body.data;
}

// ---------------------------------------------------------------- clock bar

async function refreshClock() {
  try {
    const clock = await api("GET", "/lab/v1/clock");
    document.getElementById("clock-mode").textContent = clock.mode;
    const now = document.getElementById("clock-now");
    now.textContent = fmtTime(clock.now);
    now.dateTime = clock.now;
    document.getElementById("clock-next").textContent =
      clock.next_timer ? `next timer ${fmtTime(clock.next_timer)}` : "no timers";
    const virtual = clock.mode === "virtual";
    document.getElementById("clock-advance").disabled = !virtual;
    document.getElementById("clock-next-timer").disabled = !virtual || !clock.next_timer;
    return clock;
  } catch (err) {
    document.getElementById("clock-now").textContent = "engine unreachable";
    return null;
  }
}

async function advanceClock(body) {
  try {
    const clock = await api("POST", "/lab/v1/clock/advance", body);
    flash(`Clock moved to ${fmtTime(clock.now)}`);
  } catch (err) {
    flash(err.message, "error");
  }
  await refreshClock();
  await view.refresh();
}

// ---------------------------------------------------------------- views

/** The current view; each has render(main) once and refresh() on a timer. */
let view = {refresh: async () => {}, stop: () => {}};

function poller(fn) {
  let timer = null;
  let busy = false;
  const tick = async () => {
    if (busy) return;  // a slow engine must not pile up requests
    busy = true;
    try { await fn(); } finally { busy = false; }
  };
  timer = setInterval(tick, REFRESH_MS);
  return {tick, stop: () => clearInterval(timer)};
}

// Functions ----------------------------------------------------------------

function functionsView(main) {
  const table = h("tbody", {id: "functions-body", "data-testid": "functions-body"});
  main.append(
    viewHead("Functions", "functions-refresh", () => refresh()),
    h("table", {className: "grid"},
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Slug"), h("th", {}, "App"),
        h("th", {}, "Triggers"), h("th", {}, ""))),
      table));

  function invokeForm(fn) {
    const data = h("textarea", {rows: 4, "data-testid": `invoke-data-${fn.slug}`,
                                placeholder: '{"key": "value"}'});
    const form = h("form", {className: "inline-form", "data-testid": `invoke-form-${fn.slug}`},
      h("label", {}, "Data (JSON)", data),
      h("button", {type: "submit", "data-testid": `invoke-submit-${fn.slug}`}, "Invoke now"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const payload = parseJsonObject(data.value, "Data");
        await gql(`mutation($slug: String!, $data: Map) {
          invokeFunction(functionSlug: $slug, data: $data) }`, {slug: fn.slug, data: payload});
        flash(`Invoked ${fn.slug}`);
        location.hash = `#/runs?function=${encodeURIComponent(fn.slug)}`;
      } catch (err) { flash(err.message, "error"); }
    });
    return form;
  }

  async function refresh() {
    let functions;
    try { functions = (await gql(FUNCTIONS_QUERY)).functions || []; } catch (err) {
      flash(err.message, "error", "functions");
      return;
    }
    clearFlash("functions");
    table.replaceChildren(...functions.map((fn) => {
      const cell = h("td", {});
      const button = h("button", {"data-testid": `invoke-${fn.slug}`, onclick: () => {
        cell.replaceChildren(invokeForm(fn));
      }}, "Invoke");
      cell.append(button);
      const triggers = (fn.triggers || []).map((t) => `${t.type.toLowerCase()}: ${t.value}`);
      return h("tr", {"data-testid": "function-row", "data-slug": fn.slug},
        h("td", {}, fn.name), h("td", {}, h("code", {}, fn.slug)),
        h("td", {}, (fn.app && fn.app.name) || ""), h("td", {}, triggers.join(", ")), cell);
    }));
    if (!functions.length) {
      table.append(h("tr", {}, h("td", {colspan: 5, className: "muted"},
        "No functions synced yet. Serve your app and sync it (lab.start() does both).")));
    }
  }
  // The function list changes only on sync; the Refresh button is enough.
  refresh();
  return {refresh, stop: () => {}};
}

// Events -------------------------------------------------------------------

function eventsView(main) {
  const name = h("input", {id: "event-name", "data-testid": "event-name", required: true,
                           placeholder: "app/user.signed_up", size: 30});
  const data = h("textarea", {id: "event-data", "data-testid": "event-data", rows: 4,
                              placeholder: '{"user_id": 42}'});
  const result = h("div", {id: "event-result", "data-testid": "event-result"});
  const form = h("form", {className: "card", "data-testid": "event-form"},
    h("h3", {}, "Send event"),
    h("label", {}, "Name", name), h("label", {}, "Data (JSON)", data),
    h("button", {type: "submit", id: "event-send", "data-testid": "event-send"}, "Send event"),
    result);
  const body = h("tbody", {"data-testid": "events-body"});
  main.append(viewHead("Events", "events-refresh", () => refresh()), form,
    h("table", {className: "grid"}, h("thead", {}, h("tr", {}, h("th", {}, "Received"),
      h("th", {}, "Name"), h("th", {}, "Event id"), h("th", {}, "Data"), h("th", {}, "Runs"))),
    body));

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    result.replaceChildren();
    try {
      const payload = parseJsonObject(data.value, "Data");
      const sent = await api("POST", "/e/lab", {name: name.value.trim(), data: payload});
      const eventId = sent.ids[0];
      flash(`Sent ${name.value.trim()} (${eventId})`);
      result.append(h("p", {}, "Event ", h("code", {"data-testid": "sent-event-id"}, eventId)),
        await runLinks(eventId, true));
      await refresh();
    } catch (err) { flash(err.message, "error"); }
  });

  async function runLinks(eventId, waitForRuns = false) {
    let runs = [];
    // Runs start right after ingest; a fresh event gets a moment for them to appear.
    for (let tries = waitForRuns ? 10 : 1; tries > 0; tries--) {
      runs = (await api("GET", `/v1/events/${eventId}/runs`)).data || [];
      if (runs.length || tries === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (!runs.length) return h("span", {className: "muted"}, "no runs");
    return h("span", {}, ...runs.map((r) => h("a", {href: `#/runs/${r.run_id}`,
      "data-testid": "event-run-link", className: "run-link"}, r.run_id)));
  }

  async function refresh() {
    let events;
    try {
      // The API's default window is the last hour of engine time; the lab wants all of it.
      events = (await api("GET", "/v1/events?limit=50&received_after=1970-01-01T00:00:00Z")).data || [];
    } catch (err) { flash(err.message, "error", "events"); return; }
    clearFlash("events");
    body.replaceChildren(...events.map((e) => {
      const runs = h("td", {}, h("button", {className: "small", onclick: async (ev) => {
        ev.target.replaceWith(await runLinks(e.internal_id).catch((err) => err.message));
      }}, "Show runs"));
      return h("tr", {"data-testid": "event-row", "data-event-id": e.internal_id},
        h("td", {}, fmtTime(e.received_at)), h("td", {}, e.name), h("td", {}, h("code", {}, e.internal_id)),
        h("td", {}, h("code", {className: "preview"}, JSON.stringify(e.data))), runs);
    }));
  }
  refresh();
  return {refresh, stop: () => {}};
}

// Runs ---------------------------------------------------------------------

function runsView(main, params) {
  const fnSelect = h("select", {id: "runs-filter-function", "data-testid": "runs-filter-function"},
    h("option", {value: ""}, "all functions"));
  const statusSelect = h("select", {id: "runs-filter-status", "data-testid": "runs-filter-status"},
    h("option", {value: ""}, "all statuses"),
    RUN_STATUSES.map((s) => h("option", {value: s}, s)));
  const auto = h("input", {type: "checkbox", id: "runs-auto-refresh",
                           "data-testid": "runs-auto-refresh", checked: true});
  const body = h("tbody", {id: "runs-body", "data-testid": "runs-body"});
  main.append(h("h2", {}, "Runs"),
    h("div", {className: "toolbar"}, h("label", {}, "Function ", fnSelect),
      h("label", {}, "Status ", statusSelect), h("label", {}, auto, " auto refresh")),
    h("table", {className: "grid"}, h("thead", {}, h("tr", {}, h("th", {}, "Run"),
      h("th", {}, "Function"), h("th", {}, "Event"), h("th", {}, "Status"), h("th", {}, "Started"),
      h("th", {}, "Ended"))), body),
    bulkReplayForm(fnSelect), bulkCancelForm(fnSelect));

  // The filters live in the URL (#/runs?function=...&status=...) so a link can preselect them.
  const filters = {function: params.get("function") || "", status: params.get("status") || ""};
  fillFunctionOptions(fnSelect, filters.function);
  statusSelect.value = filters.status;
  for (const select of [fnSelect, statusSelect]) {
    select.addEventListener("change", () => {
      filters.function = fnSelect.value;
      filters.status = statusSelect.value;
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(filters)) if (value) query.set(key, value);
      history.replaceState(null, "", `#/runs${query.toString() ? "?" + query : ""}`);
      refresh();
    });
  }

  let generation = 0;  // a slower, older refresh must not overwrite a newer one

  async function refresh() {
    const mine = ++generation;
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filters)) if (value) query.set(key, value);
    let runs;
    try { runs = (await api("GET", `/lab/v1/runs?${query}`)).data || []; } catch (err) {
      flash(err.message, "error", "runs");
      return;
    }
    if (mine !== generation) return;
    clearFlash("runs");
    body.replaceChildren(...runs.map((r) => h("tr", {"data-testid": "run-row",
        "data-run-id": r.run_id, "data-status": r.status},
      h("td", {}, h("a", {href: `#/runs/${r.run_id}`, "data-testid": "run-link"}, r.run_id),
        r.original_run_id ? h("div", {className: "muted small"}, "rerun of ",
          h("a", {href: `#/runs/${r.original_run_id}`}, r.original_run_id)) : null),
      h("td", {}, r.function_slug || r.function_id), h("td", {}, r.event_name || ""),
      h("td", {}, badge(r.status, "run-status")), h("td", {}, fmtTime(r.run_started_at)),
      h("td", {}, fmtTime(r.ended_at)))));
    if (!runs.length) {
      body.append(h("tr", {}, h("td", {colspan: 6, className: "muted"}, "No runs match.")));
    }
  }
  refresh();
  const timer = poller(async () => { if (auto.checked) await refresh(); });
  return {refresh, stop: timer.stop};
}

async function fillFunctionOptions(select, selected) {
  try {
    const functions = (await gql(FUNCTIONS_QUERY)).functions || [];
    for (const fn of functions) {
      select.append(h("option", {value: fn.slug, "data-app": (fn.app && fn.app.name) || ""},
        fn.slug));
    }
    select.value = selected;
    // Let listeners (the bulk-cancel form) pick up a function preselected by the URL.
    if (selected && select.value === selected) select.dispatchEvent(new Event("change"));
  } catch (err) { flash(err.message, "error"); }
}

/** Bulk Replay (lab API): rerun from the start every run of one function in a time window
 * with the chosen statuses, optionally only those whose error mentions some text. */
function bulkReplayForm(fnSelect) {
  const fn = h("input", {"data-testid": "replay-function", placeholder: "function slug", size: 20});
  const name = h("input", {"data-testid": "replay-name", size: 30,
                           placeholder: "what incident this fixes (optional)"});
  const since = h("input", {"data-testid": "replay-since", placeholder: "optional RFC 3339", size: 24});
  const until = h("input", {"data-testid": "replay-until", placeholder: "optional RFC 3339", size: 24});
  const error = h("input", {"data-testid": "replay-error", size: 30,
                            placeholder: "optional, e.g. timeout"});
  const boxes = ["Failed", "Cancelled", "Completed", "Skipped"].map((status) =>
    h("label", {className: "inline"}, h("input", {type: "checkbox", value: status,
      "data-testid": `replay-status-${status.toLowerCase()}`, checked: status === "Failed"}),
      ` ${status}`));
  const out = h("pre", {"data-testid": "replay-result", className: "output"});
  const form = h("form", {className: "card", "data-testid": "bulk-replay-form"},
    h("h3", {}, "Replay (bulk)"),
    h("p", {className: "muted"}, "Runs every selected run of one function again from the start, " +
      "with its original event: every step executes again, so side effects can repeat. " +
      "To keep earlier steps' results, rerun one run from a step instead. " +
      "Cron-triggered runs cannot be rerun and are skipped."),
    h("label", {}, "Function", fn), h("label", {}, "Name", name),
    h("label", {}, "Queued after", since), h("label", {}, "Queued before", until),
    h("div", {className: "statuses"}, "Statuses ", ...boxes),
    h("label", {}, "Error contains", error),
    h("button", {type: "submit", "data-testid": "bulk-replay-submit"}, "Replay matching runs"), out);
  fnSelect.addEventListener("change", () => { fn.value = fnSelect.value; });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      if (!fn.value.trim()) throw new Error("Replay needs a function");
      const statuses = boxes.map((b) => b.querySelector("input")).filter((b) => b.checked)
        .map((b) => b.value);
      if (!statuses.length) throw new Error("Pick at least one status to replay");
      const body = {function: fn.value.trim(), statuses, name: name.value.trim()};
      if (since.value.trim()) body.since = since.value.trim();
      if (until.value.trim()) body.until = until.value.trim();
      if (error.value.trim()) body.error_contains = error.value.trim();
      const answer = (await api("POST", "/lab/v1/replay", body)).data;
      out.textContent = pretty(answer);
      flash(`Replayed ${answer.run_ids.length} run(s) of ${answer.function} from the start` +
        (answer.skipped.length ? `; skipped ${answer.skipped.length}` : ""));
      await view.refresh();
    } catch (err) { flash(err.message, "error"); }
  });
  return form;
}

/** Bulk cancel: POST /v1/cancellations for one function, a time window and an expression. */
function bulkCancelForm(fnSelect) {
  const app = h("input", {"data-testid": "bulk-app-id", placeholder: "app id", size: 16});
  const fn = h("input", {"data-testid": "bulk-function-id", placeholder: "function slug", size: 20});
  const after = h("input", {"data-testid": "bulk-started-after", placeholder: "optional RFC 3339",
                            size: 24});
  const before = h("input", {"data-testid": "bulk-started-before", placeholder: "RFC 3339 (now)",
                             size: 24});
  const expr = h("input", {"data-testid": "bulk-if", size: 40,
                           placeholder: 'optional, e.g. event.data.customer_id == "c-1"'});
  const out = h("pre", {"data-testid": "bulk-result", className: "output"});
  const form = h("form", {className: "card", "data-testid": "bulk-cancel-form"},
    h("h3", {}, "Bulk cancel"),
    h("p", {className: "muted"}, "Stops queued, sleeping and waiting runs of one function that " +
      "started in the window (and match the expression). A step already executing finishes first."),
    h("label", {}, "App id", app), h("label", {}, "Function", fn),
    h("label", {}, "Started after", after), h("label", {}, "Started before", before),
    h("label", {}, "If", expr),
    h("button", {type: "submit", "data-testid": "bulk-cancel-submit"}, "Cancel matching runs"), out);
  // Picking a function in the filter fills the form, so the common case is one click.
  fnSelect.addEventListener("change", () => {
    const option = fnSelect.selectedOptions[0];
    fn.value = fnSelect.value;
    app.value = (option && option.dataset.app) || "";
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      if (!app.value.trim() || !fn.value.trim()) throw new Error("Bulk cancel needs an app id and a function");
      const clock = await api("GET", "/lab/v1/clock");
      const body = {app_id: app.value.trim(), function_id: fn.value.trim(),
                    started_before: before.value.trim() || clock.now};
      if (after.value.trim()) body.started_after = after.value.trim();
      if (expr.value.trim()) body.if = expr.value.trim();
      const answer = await api("POST", "/v1/cancellations", body);
      out.textContent = pretty(answer);
      flash(`Bulk cancellation created for ${body.function_id}`);
      await view.refresh();
    } catch (err) { flash(err.message, "error"); }
  });
  return form;
}

// One run ------------------------------------------------------------------

function runView(main, runId) {
  const head = h("div", {id: "run-head", "data-testid": "run-head"});
  const actions = h("div", {className: "toolbar"},
    h("button", {id: "run-rerun", "data-testid": "run-rerun", onclick: () => rerun(null),
                 title: "A new run with the same event; every step executes again"}, "Rerun"),
    h("button", {id: "run-rerun-failed", "data-testid": "run-rerun-failed",
                 onclick: () => rerun(failedSpan()),
                 title: "Earlier steps come back from the memo; the failed step runs again"},
      "Rerun from failed step"),
    h("button", {id: "run-cancel", "data-testid": "run-cancel", onclick: cancel}, "Cancel"),
    h("button", {"data-testid": "run-refresh", onclick: () => refresh()}, "Refresh"));
  const steps = h("ol", {id: "timeline", "data-testid": "timeline", className: "timeline"});
  const output = h("pre", {id: "run-output", "data-testid": "run-output", className: "output"});
  const trigger = h("div", {id: "run-trigger", "data-testid": "run-trigger"});
  main.append(h("h2", {}, "Run ", h("code", {"data-testid": "run-id"}, runId)), head, actions,
    h("h3", {}, "Steps"), steps, h("h3", {}, "Run output"), output,
    h("h3", {}, "Trigger"), trigger);
  let isCron = false;  // cron-triggered runs cannot be rerun
  showTrigger();

  // What started the run never changes, so it is fetched once.
  async function showTrigger() {
    try {
      const t = (await gql(TRIGGER_QUERY, {id: runId})).runTrigger;
      isCron = !!t.cron;
      if (isCron) refresh();  // the rerun buttons depend on it
      const what = t.cron ? `cron ${t.cron}` : (t.isBatch ? `batch of ${t.IDs.length} ${t.eventName} events`
        : `event ${t.eventName}`);
      trigger.replaceChildren(h("p", {}, what, " at ", fmtTime(t.timestamp), " ",
        ...t.IDs.map((id) => h("code", {className: "run-link"}, id))),
        ...t.payloads.map((p) => h("pre", {className: "output"}, pretty(p))));
    } catch (err) { trigger.textContent = err.message; }
  }

  let lastRun = null;
  const outputs = new Map();  // outputID -> {data, error}; finished spans never change

  async function spanOutput(outputId) {
    if (!outputId) return null;
    if (!outputs.has(outputId)) {
      const answer = await gql(SPAN_OUTPUT_QUERY, {id: outputId});
      outputs.set(outputId, answer.runTraceSpanOutputByID || {});
    }
    return outputs.get(outputId);
  }

  let generation = 0;  // a slower, older refresh must not overwrite a newer one

  async function refresh() {
    const mine = ++generation;
    let run;
    try { run = (await gql(RUN_QUERY, {id: runId})).run; } catch (err) {
      flash(err.message, "error", "run");
      return;
    }
    if (!run) { head.textContent = "No such run."; return; }
    clearFlash("run");
    lastRun = run;
    const status = statusWord(run.status);
    const done = TERMINAL.includes(status);
    // Fetch everything first, then update the page in one go, so what a reader (or a test)
    // sees is never half old and half new.
    const spans = (run.trace && run.trace.childrenSpans) || [];
    const items = [];
    for (const span of spans) items.push(await stepItem(span, run.status, done && !isCron));
    if (mine !== generation || !head.isConnected) return;  // newer refresh, or left the page
    head.replaceChildren(h("dl", {className: "facts", "data-started": run.startedAt,
                              "data-ended": run.endedAt},
      h("dt", {}, "Function"), h("dd", {}, run.function ? run.function.slug : ""),
      h("dt", {}, "Status"), h("dd", {}, h("span", {id: "run-status", "data-testid": "run-status",
        "data-status": status, className: `badge status-${status.toLowerCase()}`}, status)),
      h("dt", {}, "Queued"), h("dd", {}, fmtTime(run.queuedAt)),
      h("dt", {}, "Started"), h("dd", {}, fmtTime(run.startedAt)),
      h("dt", {}, "Ended"), h("dd", {}, fmtTime(run.endedAt)),
      h("dt", {}, "Duration"), h("dd", {}, fmtDuration(spanMs(run.startedAt, run.endedAt)))));
    document.getElementById("run-cancel").disabled = done;
    document.getElementById("run-rerun").disabled = !done || isCron;
    document.getElementById("run-rerun-failed").disabled = !done || isCron || !failedSpan();
    steps.replaceChildren(...items);
    if (!spans.length) steps.append(h("li", {className: "muted"}, "No steps yet."));
    output.textContent = run.output ? pretty(run.output) : (done ? "(none)" : "(still running)");
  }

  async function stepItem(span, runStatus, rerunnable) {
    const detail = await spanOutput(span.outputID).catch((err) => ({error: {message: err.message}}));
    const info = span.stepInfo || {};
    const notes = [];
    if (info.sleepUntil) notes.push(`sleeping until ${fmtTime(info.sleepUntil)}`);
    if (info.eventName) {
      notes.push(`waiting for ${info.eventName}` + (info.expression ? ` if ${info.expression}` : "") +
        (info.timeout ? `, timeout ${fmtTime(info.timeout)}` : "") +
        (info.foundEventID ? ` (got ${info.foundEventID})` : "") + (info.timedOut ? " (timed out)" : ""));
    }
    if (info.functionID) notes.push(`invoking ${info.functionID}` + (info.runID ? ` run ${info.runID}` : "") +
      (info.timedOut ? " (timed out)" : ""));
    const attempts = (span.childrenSpans || []).filter((c) => /^Attempt/.test(c.name));
    const status = stepStatus(span, runStatus);
    const origin = stepSource(span, runStatus);
    return h("li", {"data-testid": "step-row", "data-step-name": span.name,
                    "data-step-status": statusWord(status), "data-memoized": String(!!span.memoized),
                    className: `step status-${statusWord(status).toLowerCase()}`},
      h("div", {className: "step-head"},
        h("strong", {"data-testid": "step-name"}, span.name),
        rerunnable && span.stepID ? h("button", {className: "small", "data-testid": "step-rerun",
          title: "Rerun from this step: the steps before it come back from the memo",
          onclick: () => rerun(span)}, "Rerun from here") : null,
        h("span", {className: "muted"}, (span.stepOp || "").toLowerCase()),
        badge(status, "step-status"),
        h("span", {className: `origin ${span.memoized ? "memo" : "exec"}`, "data-testid": "step-origin"}, origin),
        h("span", {"data-testid": "step-attempts"}, `attempts: ${span.attempts || 1}`),
        h("span", {className: "muted"}, `${fmtTime(span.startedAt)} → ${fmtTime(span.endedAt)}`,
          span.endedAt ? ` (${fmtDuration(span.duration ?? spanMs(span.startedAt, span.endedAt))})` : "")),
      notes.length ? h("div", {className: "step-info", "data-testid": "step-info"}, notes.join("; ")) : null,
      attempts.length > 1 ? h("div", {className: "attempts"}, attempts.map((a) =>
        h("span", {className: `badge status-${statusWord(stepStatus(a, runStatus)).toLowerCase()}`,
                   "data-testid": "step-attempt"},
          `${attemptLabel(a.name)}: ${statusWord(stepStatus(a, runStatus))}`))) : null,
      detail && detail.error ? h("pre", {className: "output error", "data-testid": "step-error"},
        `${detail.error.name || "Error"}: ${detail.error.message || ""}`) : null,
      detail && detail.data !== null && detail.data !== undefined ?
        h("pre", {className: "output", "data-testid": "step-output"}, pretty(detail.data)) : null);
  }

  function failedSpan() {
    const spans = (lastRun && lastRun.trace && lastRun.trace.childrenSpans) || [];
    return spans.find((s) => statusWord(s.status) === "Failed" && s.stepID) || null;
  }

  /** Inngest's Rerun: from the start (span null), or from a step (earlier steps memoized). */
  async function rerun(span) {
    if (!lastRun) return;
    try {
      const answer = span
        ? await gql(`mutation($id: ULID!, $step: String!) { rerun(runID: $id, fromStep: {stepID: $step}) }`,
                    {id: runId, step: span.stepID})
        : await gql(`mutation($id: ULID!) { rerun(runID: $id) }`, {id: runId});
      const newId = answer.rerun;
      flash(span ? `Rerunning from step "${span.name}" as run ${newId}` : `Rerunning as run ${newId}`);
      location.hash = `#/runs/${newId}`;
    } catch (err) { flash(err.message, "error"); }
  }

  async function cancel() {
    try {
      await gql(`mutation($id: ULID!) { cancelRun(runID: $id) { id } }`, {id: runId});
      flash(`Cancelled run ${runId}`);
      await refresh();
    } catch (err) { flash(err.message, "error"); }
  }

  refresh();
  // Keep following the run until it is finished; a finished run never changes.
  const timer = poller(async () => {
    if (!lastRun || !TERMINAL.includes(statusWord(lastRun.status))) await refresh();
  });
  return {refresh, stop: timer.stop};
}

// ---------------------------------------------------------------- routing

function route() {
  view.stop();
  clearFlash();  // an error belongs to the page it was about, not to the next one
  const main = document.getElementById("view");
  main.replaceChildren();
  const [path, queryString] = (location.hash.replace(/^#/, "") || "/runs").split("?");
  const params = new URLSearchParams(queryString || "");
  const parts = path.split("/").filter(Boolean);
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.getAttribute("href") === `#/${parts[0] || "runs"}`);
  }
  if (parts[0] === "functions") view = functionsView(main);
  else if (parts[0] === "events") view = eventsView(main);
  else if (parts[0] === "runs" && parts[1]) view = runView(main, parts[1]);
  else view = runsView(main, params);
}

document.getElementById("clock").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const duration = document.getElementById("clock-duration").value.trim();
  if (!duration) { flash("Give a duration such as 30s, 15m, 4h or 3d", "error"); return; }
  advanceClock({duration});
});
document.getElementById("clock-next-timer").addEventListener("click",
  () => advanceClock({to_next_timer: true}));
window.addEventListener("hashchange", route);
route();
refreshClock();
setInterval(refreshClock, REFRESH_MS * 2);
