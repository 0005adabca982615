"""Execute the pilot notebooks headless with papermill against a fresh embedded engine.

* every concept notebook in ``notebooks/`` and every solution in ``solutions/`` runs to the end
  without an error, and every ``lab.check`` in a solution passes;
* every learner exercise in ``exercises/`` stops at its first ``NotImplementedError`` (it
  neither hangs nor fails earlier for another reason).

Each notebook gets its own engine (virtual clock, in memory) and its own papermill subprocess
with a hard timeout, like the grader does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import sys
from pathlib import Path

import nbformat
import pytest

from lab_support.checks import CHECK_MIMETYPE
from lab_support.engine_process import EngineProcess

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 180
PROCESS_TIMEOUT_S = 420

pytestmark = [pytest.mark.notebook, pytest.mark.slow, pytest.mark.timeout(PROCESS_TIMEOUT_S + 60)]


def run_papermill(source: Path, out_dir: Path, engine_url: str, *, as_grader: bool):
    """Execute ``source`` into ``out_dir``; returns (exit code, executed notebook, log text)."""
    executed = out_dir / source.name
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env.pop("INNGEST_DEV", None)
    # Part 4 writes the learner's package (lab_support.workspace): one per notebook, never
    # the checkout's workspace/.
    env["LAB_WORKSPACE"] = str(out_dir / "workspace")
    cmd = [sys.executable, "-m", "papermill", str(source), str(executed), "-k", "python3",
           "--cwd", str(ROOT), "--no-progress-bar", "--execution-timeout", str(CELL_TIMEOUT_S)]
    if as_grader:  # solutions and exercises read the engine from the injected parameter
        cmd += ["-p", "grading", "True", "-r", "engine_url", engine_url]
    else:  # concept notebooks call lab.start() plainly; INNGEST_DEV points it at our engine
        env["INNGEST_DEV"] = engine_url
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=PROCESS_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{source.name} did not finish within {PROCESS_TIMEOUT_S} s "
                    f"(papermill output: {str(exc.stderr)[-2000:]})")
    nb = nbformat.read(str(executed), as_version=4) if executed.exists() else None
    return proc.returncode, nb, proc.stderr[-4000:]


def errors(nb) -> list[tuple[str, str]]:
    return [(out.get("ename", ""), out.get("evalue", ""))
            for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def check_records(nb) -> list[dict]:
    return [out["data"][CHECK_MIMETYPE]
            for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if CHECK_MIMETYPE in out.get("data", {})]


# What each concept notebook claims in its prose and predictions, as printed by its own demos.
# If the engine's behaviour drifts, the notebook would teach something false: fail here.
CLAIMS = {
    "00_quick_win.ipynb": [
        "step bodies run by this attempt: {'compose-greeting': 1, 'compose-farewell': 5}",
        "step bodies run by the rerun from the failed step: {'compose-farewell': 1}",
        "step bodies run by a plain rerun: {'compose-greeting': 1, 'compose-farewell': 1}",
        "step bodies run by a bulk replay of the failed run: "
        "{'compose-greeting': 1, 'compose-farewell': 1}",
        "greeting and farewell ran in different processes: True",
        "serve() raised SigningKeyMissingError - signing_key_unspecified",
    ],
    "01_events_vs_requests.ipynb": [
        "event model, peak open parser connections: 1",
        "50 drafts; 50 save-draft executions",
        "(never more than the limit of 7: True; counted by the ",
        "runs started by an event nobody listens to: 0",
    ],
    "02_cron_triggers.ipynb": [
        "7 daily runs; 35 customer checks",
        "invoked run: COMPLETED | its event: inngest/function.invoked",
        "strict-slot-reader invoked by hand: FAILED | KeyError: True",
        "children started by the duplicate: 0",
        "the next day's tick: COMPLETED",
        "customers checked for that day: 5",
    ],
    "03_webhook_triggers.ipynb": [
        "runs for the Stripe event: 1", "runs for our own event:    0", "runs for this event: []",
        "redelivery answered 200 | new runs: 0 | new notifications: 0",
        "an event named 'RefundFailed' was accepted: True",
        "dispute handled by nobody yet: True",
    ],
    "04_idempotency.ipynb": [
        "no id (o-5100): 3 run(s), 4500 cents moved",
        "id with the click's time (o-5150): 3 run(s), 4500 cents moved",
        "id from the form token (o-5200): 1 run(s), 1500 cents moved",
        "step bodies run: {'lookup-order': 1, 'issue-provider-refund': 1, 'audit-refund': 1}",
        "money moved: 5000 cents for a 2500-cent refund",
        "provider calls: 2 | money moved for ch_7300: 2500 cents",
        "emails for ch_881 (provider id as event id): 1",
        "emails for ch_882 (no id): 3",
        "emails for ch_883 (no id, idempotency on charge_id): 1",
        "cron runs: 2 | health checks: 3",
    ],
    "05_fan_out.ipynb": [
        "one event started 3 runs: [('refund-failed-notify-support', 'COMPLETED'), "
        "('refund-failed-post-slack', 'COMPLETED'), ('refund-failed-update-risk-score', 'COMPLETED')]",
        "the agent finished last: True",
        "statuses: {'refund-failed-notify-support': 'COMPLETED', 'refund-failed-post-slack': "
        "'FAILED', 'refund-failed-update-risk-score': 'COMPLETED'}",
        "step bodies run by the rerun: {'post-message': 1}",
        "20 child runs, 20 customers checked", "parent finished first: True",
        "(never more than the limit of 5: True)", "(lab.stats never above the limit: True)",
        "| new child runs: 0",
        "invoke: {'risk_score': 0.42}",
        "5,000 events: 5000 accepted",
        "5,001 events: SendEventsError - Cannot have more than 5000 events in a batch",
        "bare send, no ids:    9 events sent, 9 child runs",
        "bare send, with ids:  9 events sent, 3 child runs",
        "step.send_event:      3 events sent, 3 child runs",
        "slots needed: 20.8 -> 21", "on Hobby's 5 concurrent steps: 8.3 h",
    ],
    "06_step_run.ipynb": [
        "6 steps at 95%, no retries: 73.5% of runs succeed, 26.5% fail",
        "one retry per step reaches 99.7% over 6 steps when each try works 97.8% of the time",
        "the function body was called 4 times; step bodies ran "
        "{'load-order': 1, 'price-order': 1, 'write-summary': 1}",
        "the function body was called 6 times; step bodies ran "
        "{'load-order': 1, 'price-order': 3, 'write-summary': 1}",
        "agent calls, agent outside step.run: 5", "agent calls, agent inside step.run:  1",
        "one reference everywhere, outside: False | in its own step: True",
        "keyword arguments: FAILED - True",
        "step bodies ran {'load-customer': 1, 'load-thread': 1, 'run-agent': 2, "
        "'save-draft-reply': 1, 'notify-reviewer': 1}",
        "process 1 ran: ['load-customer', 'load-thread', 'run-agent', 'save-draft-reply']",
        "process 2 ran: ['save-draft-reply', 'notify-reviewer']",
        "'save-draft-reply': 1, 'notify-reviewer': 4}",
        "step bodies ran: {'load-customer': 1, 'load-thread': 1, 'run-agent': 1, "
        "'save-draft-reply': 2, 'notify-reviewer': 1}",
    ],
    "07_memoization.ipynb": [
        "step bodies ran: {'load-customer': 1, 'load-thread': 1, 'run-agent': 1}",
        "load-customer answered from the memo on 3 calls",
        "the rerun from run-agent ran: {'run-agent': 1}",
        "outside a step, no failures: fetch_expensive_data ran 4x",
        "outside a step, chart fails twice: fetch_expensive_data ran 6x",
        "in its own step, chart fails twice: fetch_expensive_data ran 1x",
        "course model: 1,000 emails x 30% x $0.015 = $4.50 per 1,000 emails",
        "measured: retries re-ran $3.00 of work per 1,000 emails; all calls of the body "
        "together $13.00",
        "output: {'first': 'c-4429', 'second': 'c-5100'}", "= sha1('load-customer:1')",
        "wrong records, same name: 2 | keyed by customer: 0",
        "emails_processed metric after one email: 5",
        "the unwrapped work wasted instead: $390.00 per month",
    ],
    "08_sleep_and_wait.ipynb": [
        "new engine process; the run is RUNNING",
        "after the third day the run is COMPLETED | emails to sam: ['welcome', 'follow-up']",
        "waiting for an approver: ['r-500', 'r-750']",
        "r-500: RUNNING (still waiting)",
        'r-500 after 24 hours: COMPLETED {"approval_arrived": false, "status": "rejected_or_timeout"}',
        'parallel waits:   {"finance": true, "legal": true}',
        'sequential waits: {"finance": false, "legal": true}',
        'r-bot-2: COMPLETED {"refund_id": "re_',
        "escalated to a senior reviewer: ['rf-2']",
    ],
    "09_retries.ipynb": [
        "run: FAILED | write-crm bodies run: 5",
        "executions: 6 billed = 1 run(s) + 5 step execution(s)",
        "retries=2: 3 attempt(s), run FAILED", "retries=0: 1 attempt(s), run FAILED",
        "step bodies run: {'load-order': 1, 'charge-card': 5, 'record-charge': 1, 'update-crm': 3}",
        "customer charged: 1 time(s)",
        "call-stripe attempts: 3 | except StripeCardDeclinedError ran: 0 times | run: FAILED",
        "what the function saw: [\"StepError(name='StripeCardDeclinedError')\"]",
        "call-stripe attempts: 1 | run: FAILED | on_failure run: COMPLETED",
        "steps stored for the failed run: 0",
        'call-stripe attempts: 1 | mark-failed ran: 1 | run: COMPLETED {"status": "card_declined"}',
        "step bodies run: {'lookup-company': 5, 'save-lead': 1}",
        "failed runs waiting in the dead-letter queue: 3",
        "charge-order bodies run by the reruns: 0",
        'support-reply: COMPLETED {"saved": false, "slack": "slack-1"}',
        "'save-draft': 2} | inside notify-slack: [7]",
        "a refused draft: FAILED after 1 attempt(s)",
    ],
    "10_ai_calls.ipynb": [
        "run: COMPLETED | step bodies run: {'load-thread': 1, 'openai-summary': 3}",
        "model requests: 3 (2 answered 429, 1 answered)",
        "attempts per step: {'load-thread': 1, 'openai-summary': 1, 'save-summary': 3}",
        "model requests for the run: 1,",
        "model requests: wrapped in step.run 1 | unwrapped 3",
        "function calls: 2", "model requests by caller: {'http': 1}",
        "methods of ctx.step.ai in inngest-py: ['infer']",
        "the step's input (the formatted text) is stored: False",
        "load-thread's output (the thread) is stored:    True",
        "in the trace: True", "in the engine's files: True",
        "in the trace: False", "in the engine's files: False",
        "user turns in the session: ['Where is my parcel?', 'Where is my parcel?']",
    ],
    "11_concurrency_throttling.ipynb": [
        "events sent: 1000; runs of this burst: {'COMPLETED': 1000}",
        "skipped runs: 0 | events that started no run: 0",
        "peak executing steps: 10; c-angry at most 2",
        "so of c-angry's 100 emails, 98 waited behind its key while 2 were drafted",
        "steps executing at once: 10 (c-angry: 2)",
        "the unthrottled burst got 429s: True; with Throttle(14/min): 0 429s",
    ],
    "12_priority_fairness.ipynb": [
        "drafts executing at once at most: 6",
        "at most 4 at once, 2 per customer",
        "without the key: t-big held up to 6 slots",
        "(at least twice the factor: True)",
    ],
    "13_batching.ipynb": [
        "120 events -> 3 runs of sizes [50, 50, 20]; provider requests: 3",
        "runs after 30 s: 1 | events in it: [3]",
        "50 tickets: 50 provider requests one by one, 1 batched",
        "store failed once; provider requests for the batch: 1",
        "run FAILED; provider requests 3 carrying 150 texts; tickets embedded: 0 of 49",
        "fixed: run COMPLETED; provider requests 1; tickets embedded: 49 of 49; "
        "dead letters: ['t-poison']",
        "the store ran twice: 98 rows sent, 49 rows kept",
        "embed-one-at-a-time: 3 batches; embed requests in flight at most: 1",
        "max_size=5: 12 events -> [5, 5, 2]",
        "Batch(timeout=timedelta(days=1)) is sent as: 1d",
    ],
    "14_replay_cancel.ipynb": [
        "runs between 14:00 and 18:00: 59 (47 failed, 12 completed)",
        "where they failed: {'escalate-with-context': 47}",
        "failed before 14:00 (another cause): [\"no customer 'c-999' in the CRM\"]",
        "at 18:25: 47 still failed; step bodies run since 18:00: 0",
        "the filter finds 47 runs",
        "rerun before the fix: FAILED - escalate-with-context: SKILL.md has no trigger matching",
        "rerun from the failed step: 47 runs, {'COMPLETED': 47}",
        "agent calls: 0 ($0.00); executions: 188 = 47 runs + 141 step executions",
        "replies per email in the incident window: {1: 59}",
        "agent calls: 47 ($9.40); executions: 329 = 47 runs + 282 step executions",
        "replies per escalated email now: {2: 47}",
        "replay-all of the day's completed runs: 15 runs; agent calls 15; summaries in v2: 15; "
        "new replies: 0",
        "runs started by the re-fired event: 0",
        "cancelled: ['c-201', 'c-202', 'c-203', 'c-206']",
        "c-301 CANCELLED ['welcome', 'day 3']",
        "c-302 COMPLETED ['welcome', 'day 3', 'day 7', 'day 14']",
        "run: CANCELLED | ledger entries: [{'invoice': 'inv-77', 'amount': 12900, "
        "'status': 'complete'}] | receipts: []",
    ],
    "15_hitl_gates.ipynb": [
        "waiting at the gate: ['r-101', 'r-102', 'r-103', 'r-104', 'r-105', 'r-106']",
        '"decided_by": "auto"', '"decided_by": "chen"',
        'r-102 {"decided_by": "bilal", "status": "rejected_by_human"}',
        'r-103: {"status": "escalated_timeout"}',
        'after the timeout: {"status": "escalated_timeout"} | calls to our code to finish it: 3',
        "the run woke 24 hours after the gate opened: True",
        "steps executing while the gate was open: 0",
        "executions: 6 billed = 1 run(s) + 5 step execution(s)",
        "keyword arguments: FAILED - Step.run() got an unexpected keyword argument 'request'",
        "attribute access: FAILED - 'dict' object has no attribute 'recommends_refund'",
        "no timeout: FAILED - Step.wait_for_event() missing 1 required keyword-only argument: "
        "'timeout'",
        'r-301: {"status": "escalated_timeout"}', "the approval is in the event list: ['dana']",
        'r-302: {"decided_by": "dana"',
        "after a decision for 'R-303': RUNNING - still waiting",
        "record-decision runs: 2; table says rejected by bilal",
        "record-decision runs: 1; table says approved by amina",
        "[hitl-unaudited-timeout]",
        "r-501: FAILED - 'NoneType' object has no attribute 'data' | audit rows for r-501: []",
        'gate with the forged id: {"approval_for": "r-777", "status": "approved"}',
        "forged id, validated: FAILED - request_id",
    ],
    "16_d1_rules_file.ipynb": [
        "envelope rules: all pass | exit status 0",
        "broke agent-outside-step       -> checker finds ['agent-outside-step']",
        "broke send-without-id          -> checker finds ['send-without-id']",
        "broke hitl-unaudited-timeout   -> checker finds ['hitl-unaudited-timeout']",
        "broke internals-import-inngest -> checker finds ['internals-import-inngest']",
        "nudge runs after one lost answer: without an id 2, with an id 1",
        "FAILED - TypeError: Step.wait_for_event() missing 1 required keyword-only argument: "
        "'timeout'",
        "AGENTS.md has the same critical rules: True",
    ],
    "17_d2_skills_mcp.ipynb": [
        "6 Inngest skills:", "list_functions count before Decision 3: 0",
        "list_functions count with the Worker served: 4",
        "remote (OpenCode) and http (Claude Code) point at the same URL: True",
        "stored event lab/setup.checked; runs started: 0",
    ],
    "18_d3_wrap_agent.ipynb": [
        "model requests for one agent invocation: 4",
        "after a failed save: run-agent attempts 1, save-draft-reply attempts 2, model requests 4",
        "agent invocations for one email: inside step.run 1, outside step.run 3",
        "model requests for that one email: 12",
        "FAILED - Step.run() got an unexpected keyword argument 'customer'",
        "FAILED - 'dict' object has no attribute 'draft'",
    ],
    "19_d4_email_webhook.ipynb": [
        "no MessageID: 400", "unknown sender: 422",
        "two invocations, two runs: True",
        "customer-data MCP tools the agent called: ['load_customer', 'load_thread', "
        "'find_similar_cases']",
        "drafts for one message without an id: 2", "drafts for one message with its id: 1",
        ": 2; runs started: 1",
    ],
    "20_d5_health_cron.ipynb": [
        "due for outreach: 20 (of them never contacted: 6)",
        "parent COMPLETED, scheduled 20; children: 20, all completed: True",
        "parent ended before the last child: True", "same-day 09:00 tick scheduled: 0",
        "outreach drafts per customer today: [1]", "runs started by today's ids sent again: 0",
        "customers scheduled by the next six daily ticks: [0, 0, 0, 6, 6, 0]",
        "a week after the outreach: due again: 20", "due by the course's SQL: 14; by the Worker's: 20",
    ],
    "21_d6_concurrency.ipynb": [
        "Worker, 6 customers x 3: peak executing steps 10, most for one customer 2, runs "
        "completed 18/18",
        "course: 5 x 4 2 per customer only    10                      2",
        "  ours: 6 x 3 2 per customer only    12                      2",
        "  ours: 6 x 3     10 overall only    10                      3",
        "model requests per email (the burst above): 4",
        "throttle-3: 0 requests answered 429, 16/16 emails completed",
        "both caps:       {\"noisy customer's slots\": 2",
    ],
    "22_d7_escalation_gate.ipynb": [
        "email run steps: ['load-customer', 'load-thread', 'run-agent', 'request-escalation', "
        "'save-draft-reply', 'audit-handled']",
        "still waiting: RUNNING",
        "who decided: {'escalation_approved': 'amna', 'escalation_edited': 'bilal', "
        "'escalation_posted_via_timeout': 'timeout', 'escalation_rejected': 'chen'}",
        "after a double click: ['escalation_approved'] | posts: 1", "a bad decision: 400",
        "early decision, then: posted_via_timeout ['escalation_posted_via_timeout']",
    ],
    "23_d8_replay_verify.ipynb": [
        "email_drafted rows for the run: 1; drafts in the customer's thread: 1",
        "failed step of each run: {'run-agent'}", "reruns: Counter({'COMPLETED': 5})",
        "in the five reruns: {('load-customer', 'memo hit'): 5, ('load-thread', 'memo hit'): 5, "
        "('run-agent', 'executed'): 5, ('save-draft-reply', 'executed'): 5, "
        "('audit-handled', 'executed'): 5}",
        "load-step bodies executed for the five emails, failures and reruns together: 10",
        "email_drafted rows for the five emails: 5, per customer [1]",
        "all audit rows of the five customers since the deploy: 10",
        "bulk Replay, load steps: ['executed', 'executed'] | email_drafted rows: 2",
    ],
    "24_cost.ipynb": [
        "one run of summary-wrapped: 1 run + 2 step executions = 3 executions",
        "10 summaries, formatting in a step: 30 executions; as plain code: 20 executions",
        "50 events, batched: 1 run(s), 2 executions; one run per event: 50 runs, 100 executions",
        "follow-up after 3 seconds: 2 steps -> 3 executions",
        "wait costs the same as the 3-second one: True",
        "one email: 1 run + 5 step executions = 6 executions",
        "a day of 12 emails: 12 runs, 60 steps, 62 step attempts (2 retried) -> 74 executions",
        "= 180,000 executions/month = 3.6 x Hobby's allowance",
        "9,000,000 executions/month -> Inngest $475 on Pro",
        "10,000 tokens per email: $0.025-$0.10 per email",
        "$0.50 per email needs 50,000-200,000 tokens",
    ],
    "25_swap_engines.ipynb": [
        "Inngest step bodies run: {'load-customer': 1, 'load-thread': 1, 'run-agent': 1, "
        "'CRASH at before-save-draft': 1, 'save-draft-reply': 1, 'audit-handled': 1}",
        "DBOS worker exit code: -9", "DBOS workflow while no worker runs: PENDING",
        "DBOS step bodies run: {'load-customer': 1, 'load-thread': 1, 'run-agent': 1, "
        "'CRASH at before-save-draft': 1, 'save-draft-reply': 1, 'audit-handled': 1}",
        "same audit rows on both engines: True", "agent runs per email: Inngest 1 | DBOS 1",
        "draft_saved rows per email: {'inngest': 2, 'dbos': 2}",
        "with write_once, draft_saved rows per email: {'inngest': 1, 'dbos': 1}",
        "two enqueues of one email id -> workflows: 1 | agent runs: 1",
        "nobody answered: {'decision': None, 'audit': 'escalation_timed_out'}",
    ],
    "26_decision_trees.ipynb": [
        "webhook branch: COMPLETED",
        "event branch: support/refund.issued started 2 runs:",
        "reply to the user: 202", "step.run branch: step bodies ran {'charge': 1, 'notify': 1}",
        "sleep / sleep_until / wait_for_event: {'approved': False}",
        "invoke + parallel: {'refunds': 2, 'risk': 0.9, 'tier': 'pro'} | child runs of score-risk: 1",
        "the blocking handler answers: {'status': 504", "the report run itself: COMPLETED",
        "the typo'd event is stored and started no run: True",
    ],
}


# Claims of cells that only the embedded engine can run (the virtual clock, slow steps); on a
# real dev server those cells say what they would have shown instead.
EMBEDDED_ONLY_CLAIMS = {
    # A real dev server ignores an eventIdSeed not in its '<ms>,<base64>' format: the id is a ULID.
    "17_d2_skills_mcp.ipynb": ["its id: setup-check-17 (eventIdSeed was 'setup-check-17')"],
    "00_quick_win.ipynb": [
        "while asleep: run RUNNING | step bodies run since the send: {'compose-greeting': 1}",
        "it wakes in 15 min of engine time",
        "after 15 engine minutes: COMPLETED | step bodies run since the send: "
        "{'compose-greeting': 1, 'compose-farewell': 1}",
        "process killed, sleep over: RUNNING",
    ],
    "01_events_vs_requests.ipynb": [
        "most draft-reply steps executing at once during the burst: 7",
    ],
    "02_cron_triggers.ipynb": [
        "Karachi 09:00 ran at UTC 04:00",
        "no limit: 3 run(s), 0 skipped, 3 in flight, 3 step(s) executing at once",
        "concurrency=1: 3 run(s), 0 skipped, 3 in flight, 1 step(s) executing at once",
        "singleton (skip): 1 run(s), 2 skipped, 1 in flight, 1 step(s) executing at once",
        "rerun refused: True",
    ],
    "04_idempotency.ipynb": [
        "the same id 25 hours later started a new run: True | money moved for o-5200 now: 3000 cents",
    ],
    "05_fan_out.ipynb": [
        "wall-clock ids, new checks per moment: [3, 3, 0]",
        "scheduled ids, new checks per moment:  [3, 0, 3]",
        "(formula: 120 s; within 5 %: True)",
    ],
    "08_sleep_and_wait.ipynb": [
        "calls to the function during 2 days asleep: 0",
        "step bodies run during 2 days asleep: 0",
        "executions billed during 2 days asleep: 0",
        "after waking, step bodies run: {'follow-up': 1}",
        "the sleep lasted, on the engine clock: 3 days 00:00:00",  # a real server: the scaled 72 s
        "5 redeploys during the sleep; run status at the end: COMPLETED",
        "renewal reminders sent to lina: 1",
        "30-day sleep on Hobby: FAILED", "3-day sleep on Hobby:  COMPLETED",
        # a real server matches events up to 5 s old: the race is won or lost by milliseconds
        'r-bot-1: COMPLETED {"approval_arrived": false, "status": "rejected_or_timeout"}',
    ],
    "09_retries.ipynb": [
        "every wait inside the dev server's 15 s / 30 s / 1 min / 2 min (+ up to 30 s) table: True",
        # a real server waits the scaled lab.minutes(10), about 2 s
        "run: COMPLETED | attempts: 2 | the successful attempt came 0 days 00:10:00 after the first",
    ],
    "10_ai_calls.ipynb": ["all 8 summaries completed: True", "load-thread bodies run: 8"],
    "14_replay_cancel.ipynb": [
        "rerun refused: run", "replay of the cron run: []",
        "the same query 25 hours later on Hobby: 0",
    ],
    "15_hitl_gates.ipynb": [
        "Saturday 16:59: run RUNNING, calls to our code since the gate opened: 0",
        "the gate opened Fri 17:00 and the run woke Sat 17:00",
    ],
    "24_cost.ipynb": [
        "Hobby: peak steps at once for a limit=10 function: 5", "Hobby: an 8-day sleep -> FAILED",
        "batch_size_too_large",
    ],
    "26_decision_trees.ipynb": ["-> 1 run of morning-digest"],
    "11_concurrency_throttling.ipynb": [
        # this real dev server keeps a limit=1 slot through a sleep (the notebook says so there)
        # a real server starts a burst's runs in no strict order (c-angry held 6 of 10 there), and
        # adds a moment between the runs of a limit=1 function (5 x 2 s took 6 x 2 s)
        "without the key: c-angry held up to 10 slots",
        "busy-drafts: 5 runs under limit=1 finished after 5 x the work time",
        "sleepy-drafts: 5 runs under limit=1 finished after 1 x the work time; runs in progress "
        "at once: 5; steps executing at once: 1",
        "calls waiting for a slot while 10 executed: up to 990",
        "started at once: 101 (limit + burst = 101); start 102 came 36 s later; one start every "
        "36 s after that",
        "runs started within one period of the burst: 150 of 150 (limit 100 per period)",
        "longest wait to start: 0.0 s; 429s: 0",
    ],
    "12_priority_fairness.ipynb": [
        "drafts begun at 9:00: ['A1', 'A2', 'B1', 'B2', 'C1', 'C2']",
        "pool-ranked: round 1 = A1 A2 B1 B2",
        "pool-unranked: round 1 = A1 A2 C1 C2",
        "with the tenant key, first draft in round: {'t-big': 1, 't-small-1': 1, 't-small-2': 1, "
        "'t-small-3': 2, 't-small-4': 2, 't-small-5': 3}",
        "without the tenant key, first draft in round: {'t-big': 1, 't-small-1': 5",
        "order after the long job: ['E1', 'F', 'E3', 'E2']",
        "factor -100, free slots, one step: COMPLETED after 200 s (start waited 100 s)",
    ],
    "13_batching.ipynb": [
        "ctx.event in each run is the batch's first event: ['t-0', 't-50', 't-100']",
        "runs after 29 s: 0",
        "embed-parallel: 3 batches; embed requests in flight at most: 3",
        "sync refused: batch-lab-embed-fifty: batch_size_too_large",
        "batch + priority: refused: batching cannot be combined with priority",
        "batch + cancel: refused: batching cannot be combined with cancel",
        "10,000 events, max_size=50: 200 run(s): 200 completed",
    ],
    # plan limits (lab.set_tier) exist only in the lab's engine: a real dev server has no plans
    "21_d6_concurrency.ipynb": [
        "peak under the Hobby plan, 6 customers x 3: 5",
        # a real server starts two sends milliseconds apart in no strict order (8 of 10 seen)
        "10 overall only: {\"noisy customer's slots\": 10",
    ],
}


def printed(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


@pytest.fixture(scope="session", autouse=True)
def worker_database():
    """The Worker's embedded Postgres for the notebooks of this session (each Decision notebook
    starts it over from the seed), not the checkout's .lab/pg. In the system temp folder: as
    root, pgserver runs Postgres as another user, who cannot enter pytest's private tmp."""
    previous = os.environ.get("LAB_PG_DIR")
    folder = tempfile.mkdtemp(prefix="notebooks-pg-")
    os.environ["LAB_PG_DIR"] = folder
    yield
    if previous is None:
        os.environ.pop("LAB_PG_DIR", None)
    else:
        os.environ["LAB_PG_DIR"] = previous
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def engine_url():
    proc = EngineProcess(memory=True).start()
    try:
        yield proc.url
    finally:
        proc.stop()



@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_concept_notebook_runs_clean(path, tmp_path, engine_url):
    code, nb, log = run_papermill(path, tmp_path, engine_url, as_grader=False)
    assert code == 0 and nb is not None, f"{path.name} failed: {errors(nb) if nb else ''}\n{log}"
    text = printed(nb)
    claims = CLAIMS.get(path.name, []) + EMBEDDED_ONLY_CLAIMS.get(path.name, [])
    missing = [claim for claim in claims if claim not in text]
    assert not missing, f"{path.name} no longer shows {missing}; it printed:\n{text}"



@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_solution_runs_with_full_marks(path, tmp_path, engine_url):
    code, nb, log = run_papermill(path, tmp_path, engine_url, as_grader=True)
    assert code == 0 and nb is not None, f"{path.name} failed: {errors(nb) if nb else ''}\n{log}"
    records = check_records(nb)
    assert records, "the solution recorded no checks"
    failed = [(r["name"], r.get("message")) for r in records if not r["passed"]]
    assert not failed, failed



@pytest.mark.parametrize("path", sorted((ROOT / "exercises").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_exercise_stops_at_its_first_placeholder(path, tmp_path, engine_url):
    code, nb, log = run_papermill(path, tmp_path, engine_url, as_grader=True)
    assert code != 0 and nb is not None, f"an untouched exercise should not run to the end\n{log}"
    assert [e[0] for e in errors(nb)] == ["NotImplementedError"], errors(nb)
    assert not [r for r in check_records(nb) if r["passed"]], "no marks for untouched work"
