"""Fire a test ``customer/email.received`` event at the engine and print the event and run ids.

    python scripts/fire_test_email.py --customer-id c-test-1 --body "Where is my refund?"

The event id is ``test-email-<customer>-<timestamp>``: re-running the same command a moment
later is a new email, while a retry of one send (same id) never starts a second run. The engine
is ``--engine-url``, else ``$INNGEST_DEV``, else http://127.0.0.1:8288.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "src"):  # runnable from a checkout without installing
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import httpx  # noqa: E402
import inngest  # noqa: E402

from chat_agent.inngest_client import engine_url, make_client  # noqa: E402


def idempotency_id(customer_id: str, when: datetime) -> str:
    return f"test-email-{customer_id}-{when.strftime('%Y%m%dT%H%M%S%fZ')}"


def wait_for_runs(base: str, internal_id: str, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        try:
            # The real dev server caches this GET for 15 s by its URL: the first (empty) answer
            # would be repeated past our deadline, so each poll asks a distinct URL.
            runs = httpx.get(f"{base}/v1/events/{internal_id}/runs",
                             params={"poll": attempt}, timeout=5).json()
            if runs.get("data"):
                return [r["run_id"] for r in runs["data"]]
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.25)
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Send a test customer email event.")
    parser.add_argument("--customer-id", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--subject", default="Test email")
    parser.add_argument("--engine-url", default=None)
    parser.add_argument("--wait", type=float, default=10.0,
                        help="seconds to wait for the run id (0: do not wait)")
    args = parser.parse_args(argv)
    if not args.customer_id.strip() or not args.body.strip():
        parser.error("--customer-id and --body must not be empty")
    base = engine_url(args.engine_url)
    now = datetime.now(timezone.utc)
    event = inngest.Event(name="customer/email.received", id=idempotency_id(args.customer_id, now),
                          data={"customer_id": args.customer_id, "body": args.body,
                                "subject": args.subject, "received_at": now.isoformat()})
    try:
        internal_ids = make_client(base).send_sync(event)
    except Exception as exc:  # the SDK raises its own error types for connection failures
        print(f"could not send to {base}: {exc}. Is the engine running?", file=sys.stderr)
        return 1
    print(f"event id: {event.id}")
    print(f"internal event id: {internal_ids[0]}")
    if args.wait > 0:
        runs = wait_for_runs(base, internal_ids[0], args.wait)
        if not runs:
            print(f"no run started within {args.wait:.0f} s: is chat-agent synced?",
                  file=sys.stderr)
            return 2
        for run_id in runs:
            print(f"run id: {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
