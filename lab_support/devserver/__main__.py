"""``python -m lab_support.devserver`` / ``lab-devserver``: run the embedded engine."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

import uvicorn

from . import VERSION
from .app import create_app
from .clock import EngineClock
from .engine import Engine
from .store import Store


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lab-devserver",
                                description="Embedded Inngest-compatible dev server for the lab.")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8288)
    state = p.add_mutually_exclusive_group()
    state.add_argument("--state-dir", default=".lab/engine",
                       help="where the SQLite state lives (default .lab/engine)")
    state.add_argument("--memory", action="store_true", help="keep state in memory only")
    p.add_argument("-u", "--sdk-url", action="append", default=[],
                   help="an app's serve URL to sync at start (repeatable)")
    p.add_argument("--clock", choices=("virtual", "real"), default="virtual")
    p.add_argument("--no-auto-advance", action="store_true",
                   help="virtual clock: only move time on request")
    p.add_argument("--retry-interval", type=float, default=None,
                   help="fixed seconds between retries (default: the dev server's backoff table)")
    p.add_argument("--sdk-timeout", type=float, default=300.0,
                   help="seconds to wait for one SDK request (default 300)")
    p.add_argument("--workers", type=int, default=100, help="max SDK requests in flight")
    p.add_argument("--event-key", default=None,
                   help="require this key on POST /e/{key} (default: $INNGEST_EVENT_KEY; "
                        "without one any key is accepted, as with inngest dev)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also serve requests whose Host is NAME (e.g. the machine's address "
                        "with --host 0.0.0.0); loopback names are always allowed")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="also accept browser requests from ORIGIN (e.g. http://localhost:6274)")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--version", action="version", version=VERSION)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = Store(None if args.memory else os.path.join(args.state_dir, "engine.sqlite3"))
    clock = EngineClock(args.clock, auto_advance=not args.no_auto_advance)
    engine = Engine(store, clock, signing_key=os.environ.get("INNGEST_SIGNING_KEY") or None,
                    retry_interval_s=args.retry_interval, sdk_timeout_s=args.sdk_timeout,
                    max_workers=args.workers)
    start_opts = {"host": args.host, "port": args.port, "urls": args.sdk_url,
                  "clock": args.clock, "state": "memory" if args.memory else args.state_dir,
                  "poll": False, "autodiscover": False}
    app = create_app(engine, start_opts=start_opts, sdk_urls=tuple(args.sdk_url),
                     event_key=args.event_key or os.environ.get("INNGEST_EVENT_KEY") or None,
                     allow_hosts=tuple(args.allow_host), allow_origins=tuple(args.allow_origin))
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        print(f"inngest-lab engine ready at http://{args.host}:{args.port} "
              f"(clock {args.clock}, state {start_opts['state']})", flush=True)
        await task

    # uvloop when installed (uvicorn[standard]): the engine spends its time on HTTP.
    factory = config.get_loop_factory() if hasattr(config, "get_loop_factory") else None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve())
    except KeyboardInterrupt:
        pass
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
