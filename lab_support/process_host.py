"""``python -m lab_support.process_host``: serve functions from a module in their own process.

``lab.start(..., host="process")`` runs this so ``lab.kill_host()`` can kill the worker in
the middle of a step (course Concept 6, scenario B) and ``lab.restart_host()`` can bring it
back, while the engine keeps the run and its memoized steps.
"""

from __future__ import annotations

import argparse
import importlib
import sys


def collect_functions(module_name: str, fn_ids: list[str]) -> list:
    import inngest

    module = importlib.import_module(module_name)
    found = {obj.id: obj for obj in vars(module).values() if isinstance(obj, inngest.Function)}
    missing = [fn_id for fn_id in fn_ids if fn_id not in found]
    if missing:
        raise SystemExit(f"process_host: {module_name} defines no function(s) {missing}; "
                         f"it has {sorted(found)}")
    return [found[fn_id] for fn_id in fn_ids] if fn_ids else list(found.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--module", required=True, help="importable module with the functions")
    parser.add_argument("--fn-id", action="append", default=[],
                        help="fully qualified function id to serve (default: all in the module)")
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--engine", required=True, help="engine URL, e.g. http://127.0.0.1:8288")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds-per-hour", type=float, default=None,
                        help="make lab.hours(...) in the functions scale as in the kernel")
    args = parser.parse_args(argv)

    import uvicorn

    from .function_host import build_app, make_client
    from .host_faults import FaultInjector

    if args.seconds_per_hour is not None:
        # Functions that write lab.hours(...) ask this process's lab which engine it is.
        from . import lab
        from .client import EngineClient

        lab.seconds_per_hour = args.seconds_per_hour
        lab.api = EngineClient(args.engine)

    functions = collect_functions(args.module, args.fn_id)
    app = FaultInjector(build_app(make_client(args.app_id, args.engine), functions))
    print(f"process host serving {len(functions)} function(s) on port {args.port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
