"""In-process cost of routing one worker-to-worker call, without sockets: ``handle_invoke`` +
``handle_result`` of the engine core, for a caller on a trusted listener (no session) and for
one on an RBAC listener (an ``RbacSession`` with an ``expose_functions`` glob).

CPU time per call (``time.process_time``), best and median of several rounds, alternating the
two cases, so a busy machine disturbs both alike. Run it with ``PYTHONPATH=<checkout>`` to
compare commits (the session case needs the RBAC code).

    python bench/route.py [--calls 100000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# bench/http.py would shadow the standard library's http; the package comes from PYTHONPATH or
# the installed checkout, so that one script can measure several commits
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

from iii_asgi.engine.config import EngineConfig  # noqa: E402
from iii_asgi.engine.core.connection import WorkerConnection  # noqa: E402
from iii_asgi.engine.core.engine import EngineCore  # noqa: E402
from iii_asgi.engine.core.registry import FunctionEntry  # noqa: E402


def _session(core: EngineCore) -> Any:
    from iii_asgi.engine.config import RbacConfig, WorkerListenerConfig
    from iii_asgi.engine.workers.worker_manager.listener import WorkerListener
    from iii_asgi.engine.workers.worker_manager.rbac import PERMISSIVE
    from iii_asgi.engine.workers.worker_manager.session import RbacSession

    rbac = RbacConfig(expose_functions=['match("bench::*")'])
    listener = WorkerListener(core, WorkerListenerConfig(port=0, rbac=rbac), "worker#bench")
    return RbacSession(listener, PERMISSIVE)


async def route(calls: int, rbac: bool) -> float:
    """µs of CPU per routed call."""
    core = EngineCore(EngineConfig())

    async def nothing(_frame: Any) -> None:
        return None

    caller, executor = WorkerConnection(nothing), WorkerConnection(nothing)
    for conn in (caller, executor):
        conn.send = nothing  # type: ignore[method-assign]
        conn.send_text = nothing  # type: ignore[method-assign]
    if rbac:
        caller.session = _session(core)
    core.registry.add_function(FunctionEntry("bench::echo", "default", owner=executor))
    invoker = core.invoker
    ids = [f"id-{i}" for i in range(calls)]
    start = time.process_time()
    for inv_id in ids:
        call = {"type": "invokefunction", "function_id": "bench::echo", "invocation_id": inv_id}
        await invoker.handle_invoke(caller, {**call, "data": {"x": 1}})
        result = {"type": "invocationresult", "invocation_id": inv_id, "result": 1}
        await invoker.handle_result(result, "")
    return (time.process_time() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cases = {"trusted (no session)": False}
    if importlib.util.find_spec("iii_asgi.engine.workers.worker_manager.session") is not None:
        cases["RBAC session"] = True  # a checkout from before the RBAC listeners has none
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, rbac in cases.items():
            times[name].append(asyncio.run(route(args.calls, rbac)))
    for name, values in times.items():
        print(
            f"{name:>22}: best {min(values):.2f} µs, median {statistics.median(values):.2f} µs"
            f" CPU per routed call ({args.rounds} rounds of {args.calls})"
        )


if __name__ == "__main__":
    main()
