"""Bridge benchmark: the example app's JSON route straight from uvicorn vs through the engine.

::

    python bench/bridge.py [--requests 20000] [--rounds 5] [--concurrency 64] [--path /todos/1]
                           [--otel] [--load own|wrk] [--duration 8] [--shapes run,split,...]

The app is ``examples.todo_app:app`` (FastAPI, bridged), the route ``GET /todos/1`` (a pydantic
response model, a lifespan-state dependency and the ``Invocation`` dependency). Two shapes, each
measured both ways in the same run:

- ``run``: ``iii-asgi run`` — the embedded engine and the app in **one process, one event loop**
  (the README's main job). ``direct`` = the app's uvicorn port; ``engine`` = the engine's HTTP
  port → engine → worker socket → bridge → the same app, all on that loop.
- ``split``: ``iii-asgi engine`` in one process, ``uvicorn examples.todo_app:app`` in another
  (how a deployment with a separate engine looks; the two can use both cores).
- ``run-ws``: ``run`` with the app's worker on a loopback WebSocket (``III_TRANSPORT=websocket``)
  instead of the in-process transport, for comparison.
- ``plain``: the same app under plain uvicorn with the bridge off (``III_BRIDGE=off``): what the
  app costs before anyone adds iii. ``run direct/plain`` and ``run engine/plain`` are printed.

``--shapes run,plain`` measures only those (default: all four).

Load: ``--concurrency`` keep-alive HTTP/1.1 connections, one request in flight each (the raw
client of ``bench/http.py``), or with ``--load wrk`` Debian's ``wrk -t2 -c<concurrency>
-d<duration>s --latency`` per round (a generator no one here wrote; installed with
``apt-get`` when absent and the bench runs as root). The requests are split into ``--rounds``
rounds, each running every target back to back, so a burst of load from other programs hits
one round, not one target.
OpenTelemetry is off in every process (``OTEL_ENABLED=false``) unless ``--otel`` turns it on
(the SDK's default, so what ``iii-asgi run`` does out of the box), and then the engine stores a
SERVER span per request too (``--tracing``, what its console turns on). Printed per target: median
round req/s, p50/p99, CPU time per request of the target's processes (``/proc``); then
engine/direct ratios (median and range of the per-round ratios; goal >= 0.85, issue 17).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_http", ROOT / "bench" / "http.py")
assert _spec is not None and _spec.loader is not None
bench_http: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_http)


#: ``OTEL_ENABLED`` of every process the bench starts (``--otel`` turns it on).
OTEL = {"OTEL_ENABLED": "false"}


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        **OTEL,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    environment.pop("III_URL", None) if "III_URL" not in (env or {}) else None
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        cwd=ROOT,
    )


def url_after(proc: subprocess.Popen[str], needle: str) -> str:
    """The first ``http://`` / ``ws://`` URL on the first output line containing ``needle``."""
    line = bench_http.wait_line(proc, needle)
    return next(word for word in line.split() if word.startswith(("http://", "ws://")))


async def wait_up(url: str, timeout: float = 120.0) -> None:
    """Until ``url`` answers 200 (an app under uvicorn starts slowly on a busy machine)."""
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} never answered 200")
            await asyncio.sleep(0.05)


async def seed(base: str) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for title in ("write the benchmark", "read the numbers"):
            response = await client.post(f"{base}/todos", json={"title": title, "tags": ["b"]})
            assert response.status_code == 201, response.text


SHAPES = ("run", "run-ws", "split", "plain")


async def start_run(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str, str]:
    """``iii-asgi run`` of the example on ephemeral ports: the process, its direct and its
    engine URL."""
    ephemeral = ["--engine-port", "0", "--engine-http-port", "0", "--engine-stream-port", "0"]
    ephemeral += ["--console-port", "off"]  # no console
    # The defaults (--otel) store the engine's spans, as `iii-asgi run` does with its console.
    ephemeral.append("--tracing" if OTEL["OTEL_ENABLED"] == "true" else "--no-tracing")
    run = spawn(
        "-m", "iii_asgi", "run", "examples.todo_app:app", "--port", "0", *ephemeral,
        "--log-level", "warning", env=env,
    )  # fmt: skip
    engine = url_after(run, "(HTTP triggers")
    direct = url_after(run, "(direct)")
    await seed(direct)
    return run, direct, engine


async def start_split() -> tuple[list[subprocess.Popen[str]], str, str]:
    engine = spawn("-m", "iii_asgi", "engine", "--port", "0", "--http-port", "0",
                   "--stream-port", "0", "--console-port", "off")  # fmt: skip
    ws_url = url_after(engine, "ws://")
    split_engine = url_after(engine, "HTTP triggers")
    port = bench_http.free_port()
    app = spawn(
        "-m", "uvicorn", "examples.todo_app:app", "--port", str(port), "--log-level",
        "warning", "--no-access-log", env={"III_URL": ws_url},
    )  # fmt: skip
    split_direct = f"http://127.0.0.1:{port}"
    await wait_up(f"{split_direct}/todos")
    await seed(split_direct)
    return [app, engine], split_direct, split_engine


async def start_plain() -> tuple[subprocess.Popen[str], str]:
    plain_port = bench_http.free_port()
    plain = spawn(
        "-m", "uvicorn", "examples.todo_app:app", "--port", str(plain_port), "--log-level",
        "warning", "--no-access-log", env={"III_BRIDGE": "off"},
    )  # fmt: skip
    plain_url = f"http://127.0.0.1:{plain_port}"
    await wait_up(f"{plain_url}/todos")
    await seed(plain_url)
    return plain, plain_url


async def drive(args: argparse.Namespace) -> None:
    procs: list[subprocess.Popen[str]] = []
    shapes = args.shapes
    targets: dict[str, tuple[str, list[int]]] = {}
    try:
        if "run" in shapes:
            run, run_direct, run_engine = await start_run()
            procs.append(run)
            targets["run direct"] = (run_direct, [run.pid])
            targets["run engine"] = (run_engine, [run.pid])
        if "run-ws" in shapes:  # the same, its worker on a loopback WebSocket (issue 17)
            ws, ws_direct, ws_engine = await start_run({"III_TRANSPORT": "websocket"})
            procs.append(ws)
            targets["run-ws direct"] = (ws_direct, [ws.pid])
            targets["run-ws engine"] = (ws_engine, [ws.pid])
        if "split" in shapes:
            split, split_direct, split_engine = await start_split()
            procs.extend(split)
            targets["split direct"] = (split_direct, [split[0].pid])
            targets["split engine"] = (split_engine, [p.pid for p in split])
        if "plain" in shapes:
            plain, plain_url = await start_plain()
            procs.append(plain)
            targets["plain"] = (plain_url, [plain.pid])
        for url, _ in targets.values():
            await wait_up(url + args.path)
        per_round = max(1, args.requests // args.rounds)
        amount = (
            f"{per_round * args.rounds} requests"
            if args.load == "own"
            else f"wrk for {max(1, round(args.duration))} s"
        )
        print(
            f"GET {args.path} of examples.todo_app: {amount} per target in {args.rounds} "
            f"rounds, {args.concurrency} in flight ({args.load} load)"
        )
        paths = {name: (base + args.path, pids) for name, (base, pids) in targets.items()}
        load = bench_http.load_raw if args.load == "own" else wrk_load(args.duration)
        rps = await bench_http.measure_rounds(paths, load, per_round, args.rounds, args.concurrency)
        pairs = [(f"{s} engine", f"{s} direct", 0.85) for s in ("run", "run-ws", "split")]
        if "plain" in shapes:
            pairs += [("run direct", "plain", 0.85), ("run engine", "plain", 0.60)]
        for name, base, goal in pairs:
            if name not in rps or base not in rps:
                continue
            ratios = sorted(t / d for t, d in zip(rps[name], rps[base], strict=True))
            print(
                f"{name}/{base.split()[-1]} {statistics.median(ratios):.2f} "
                f"(rounds {ratios[0]:.2f}-{ratios[-1]:.2f})  (goal >= {goal:.2f})"
            )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


def ensure_wrk() -> str:
    """The ``wrk`` binary, installed from Debian's packages when absent (root only)."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("--load wrk needs wrk (apt-get install wrk)")
    return found


_WRK_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_SCALE = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_load(duration: float) -> Any:
    """A ``run(url, requests, concurrency)`` for :func:`measure_rounds` driving ``wrk`` for
    ``duration`` seconds per round: ``{"rps", "requests", "p50", "p99"}`` (ms)."""
    binary = ensure_wrk()

    async def run(url: str, requests: int, concurrency: int) -> dict[str, Any]:
        del requests
        proc = await asyncio.create_subprocess_exec(
            binary, "-t2", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--latency", url,
            stdout=asyncio.subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        out, _ = await proc.communicate()
        text = out.decode()
        if "Requests/sec:" not in text:
            raise RuntimeError(f"wrk failed on {url}: {text.strip()}")
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
        total = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
        quantiles = {q: float(v) * _WRK_SCALE[unit] for q, v, unit in _WRK_LATENCY.findall(text)}
        return {"rps": rps, "requests": total, "p50": quantiles["50"], "p99": quantiles["99"]}

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--path", default="/todos/1")
    parser.add_argument(
        "--shapes",
        default=",".join(SHAPES),
        type=lambda text: [shape for shape in text.split(",") if shape],
        help=f"comma-separated shapes to measure (default {','.join(SHAPES)})",
    )
    parser.add_argument(
        "--otel", action="store_true", help="OpenTelemetry on in every process (default off)"
    )
    parser.add_argument(
        "--load", choices=["own", "wrk"], default="own", help="load generator (default: own)"
    )
    parser.add_argument(
        "--duration", type=float, default=8.0, help="seconds per round with --load wrk"
    )
    args = parser.parse_args()
    OTEL["OTEL_ENABLED"] = "true" if args.otel else "false"
    import uvloop

    uvloop.run(drive(args))


if __name__ == "__main__":
    main()
