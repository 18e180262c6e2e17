"""Limits benchmark (issue 13): a well-behaved caller's latency alone, then beside each abusive
client, in one run.

::

    python bench/limits.py [--seconds 4] [--interval-ms 10] [--scenario NAME ...]

Processes, all on loopback: ``iii-asgi engine`` (worker port and HTTP port on free ports), a
route worker serving ``GET /health``, ``POST /upload`` and ``POST /big``, the well-behaved
caller (this process: a worker that calls its own function every ``--interval-ms``), and for
each scenario one abuser process that runs for ``--seconds`` against the engine. Printed per
scenario: the caller's p50 / p99 and their ratio to the baseline measured alone, its errors,
a health check's worst time, the engine's peak RSS (``/proc``), and what the abuser got.

Scenarios are rows of :data:`SCENARIOS` (name → :class:`Scenario`); an abuser is an async
function ``abuse(target, seconds) -> str`` run in its own process. To add one, write the
function and add a row. The rows: the HTTP port's (large header, slow headers, slow bodies,
big posts) and the worker sockets' (a stuck worker, an invocation flood, many large frames).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py is named like the stdlib's ``http``: keep this folder off the import path.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# The raw-HTTP and /proc helpers of the limits tests (tests/engine/limits_support.py).
_support_spec = importlib.util.spec_from_file_location(
    "limits_support", ROOT / "tests" / "engine" / "limits_support.py"
)
assert _support_spec is not None and _support_spec.loader is not None
limits_support: Any = importlib.util.module_from_spec(_support_spec)
_support_spec.loader.exec_module(limits_support)
#: ``send_quietly(writer, data)``: written in chunks with back-pressure until the peer hangs up.
_send: Callable[[asyncio.StreamWriter, bytes], Awaitable[None]] = limits_support.send_quietly
MIB = 1024 * 1024


@dataclass
class Target:
    """Where the abusers aim: the engine's worker URL and HTTP port."""

    url: str
    http_port: int


@dataclass
class Scenario:
    """One abusive client: what it does, and the coroutine that does it (in its own process)
    for ``seconds``, returning a one-line summary of what it got back."""

    description: str
    abuse: Callable[[Target, float], Awaitable[str]]


# -- abusers (each runs in its own process) ------------------------------------------------------


async def _status(reader: asyncio.StreamReader, timeout: float = 30) -> str:
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (asyncio.TimeoutError, ConnectionError):
        return "no answer"
    parts = line.split()
    return parts[1].decode() if len(parts) > 1 else "closed"


async def _codes(calls: list[Any]) -> Counter[str]:
    seen: Counter[str] = Counter()
    for outcome in await asyncio.gather(*calls, return_exceptions=True):
        seen[
            getattr(outcome, "code", type(outcome).__name__)
            if isinstance(outcome, BaseException)
            else "ok"
        ] += 1
    return seen


def _summary(seen: Counter[str]) -> str:
    return ", ".join(f"{k} x {v}" for k, v in seen.most_common())


async def large_header(target: Target, seconds: float) -> str:
    """Requests with one 16 MiB header, one after another."""
    head = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: " + b"a" * (16 * MIB)
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.http_port)
        sending = asyncio.ensure_future(_send(writer, head))
        seen[await _status(reader)] += 1
        sending.cancel()
        writer.close()
    return ", ".join(f"{k} x {v}" for k, v in seen.items())


async def _trickle(target: Target, seconds: float, head: bytes, byte: bytes) -> str:
    """500 connections sending ``head`` then one ``byte`` every 0.5 s, reconnecting when the
    engine closes them."""
    seen: Counter[str] = Counter()
    held = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal held
        while time.monotonic() < deadline:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", target.http_port)
            except OSError:
                seen["connect failed"] += 1
                await asyncio.sleep(0.1)
                continue
            try:
                writer.write(head)
                while time.monotonic() < deadline and not reader.at_eof():
                    await asyncio.sleep(0.5)
                    writer.write(byte)
                    await writer.drain()
                    if reader._buffer:  # type: ignore[attr-defined]  # an answer came
                        break
                if time.monotonic() < deadline:
                    seen[await _status(reader, 1)] += 1
                else:
                    held += 1
            except ConnectionError:
                seen["reset"] += 1
            finally:
                writer.close()

    await asyncio.gather(*(client() for _ in range(500)))
    answers = "".join(f", {k} x {v}" for k, v in seen.most_common())
    return f"{held} still trickling at the end{answers}"


async def slow_headers(target: Target, seconds: float) -> str:
    """500 connections sending their head a byte every 0.5 s."""
    head = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: "
    return await _trickle(target, seconds, head, b"a")


async def slow_bodies(target: Target, seconds: float) -> str:
    """500 connections sending a JSON body a byte every 0.5 s."""
    head = (
        b"POST /upload HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: 100000\r\n\r\n["
    )
    return await _trickle(target, seconds, head, b"1")


async def big_posts(target: Target, seconds: float) -> str:
    """32 concurrent 16 MiB JSON POSTs, again and again."""
    body = b'"' + b"a" * (16 * MIB - 2) + b'"'
    head = (
        "POST /big HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < deadline:
            reader, writer = await asyncio.open_connection("127.0.0.1", target.http_port)
            writer.write(head)
            await _send(writer, body)
            seen[await _status(reader, 60)] += 1
            writer.close()

    await asyncio.gather(*(client() for _ in range(32)))
    return ", ".join(f"{k} x {v}" for k, v in seen.items())


async def stuck_worker(target: Target, seconds: float) -> str:
    """A worker whose handler blocks its event loop (``time.sleep``), so it stops reading its
    socket, and a caller sending it 256 KiB calls every 5 ms (~160 MiB offered in 4 s,
    past the kernel's buffers and the 64 MiB outbound queue)."""
    import iii

    stuck = iii.register_worker(target.url, iii.InitOptions(worker_name="bench-stuck"))

    async def block(data: Any) -> Any:
        time.sleep(seconds)
        return None

    stuck.register_function("abuse::block", block)
    stuck.register_function("abuse::ok", lambda data: "ok")
    caller = iii.III(target.url, iii.InitOptions(worker_name="bench-stuck-caller"))
    await caller.connect()
    for _ in range(200):
        with contextlib.suppress(Exception):
            await caller.trigger_async({"function_id": "abuse::ok", "payload": 0})
            break
        await asyncio.sleep(0.02)
    void = iii.TriggerActionVoid()
    await caller.trigger_async({"function_id": "abuse::block", "payload": 0, "action": void})
    blob = "x" * (256 * 1024)
    calls = []
    deadline = time.monotonic() + seconds * 0.8
    while time.monotonic() < deadline:
        request = {"function_id": "abuse::ok", "payload": blob, "timeout_ms": 60_000}
        calls.append(asyncio.ensure_future(caller.trigger_async(request)))
        await asyncio.sleep(0.005)
    seen = await _codes(calls)
    await caller.shutdown_async()
    stuck.shutdown()
    return _summary(seen)


async def invocation_flood(target: Target, seconds: float) -> str:
    """Invocations sent as fast as a raw socket takes them at an executor serving 80 a
    second (one call at a time, 12.5 ms each)."""
    import websockets

    import iii

    executor = iii.register_worker(target.url, iii.InitOptions(worker_name="bench-slow"))
    lock = asyncio.Lock()

    async def slow(data: Any) -> Any:
        async with lock:
            await asyncio.sleep(0.0125)
        return data

    executor.register_function("abuse::slow", slow)
    await asyncio.sleep(0.5)  # registered
    seen: Counter[str] = Counter()
    sent = 0
    async with websockets.connect(target.url, max_size=2**26, compression=None) as ws:
        await ws.recv()  # workerregistered

        async def read() -> None:
            async for raw in ws:
                frame = json.loads(raw)
                error = frame.get("error")
                seen[error["code"] if error else "ok"] += 1

        reader = asyncio.ensure_future(read())
        deadline = time.monotonic() + seconds * 0.8
        while time.monotonic() < deadline:
            frame = {
                "type": "invokefunction",
                "function_id": "abuse::slow",
                "data": {"n": sent},
                "invocation_id": str(uuid.uuid4()),
                "timeout_ms": 60_000,
            }
            await ws.send(json.dumps(frame))
            sent += 1
            if sent % 64 == 0:
                await asyncio.sleep(0)  # read the answers (a client that never does is dropped)
        await asyncio.sleep(1)
        reader.cancel()
    executor.shutdown()
    return f"{sent} sent; {_summary(seen)} (the rest still queued at the executor)"


async def large_frames(target: Target, seconds: float) -> str:
    """24 sockets each sending 32 MiB messages, again and again (768 MiB offered at once)."""
    import websockets

    body = json.dumps(
        {
            "type": "invokefunction",
            "function_id": "abuse::nobody",
            "data": {"blob": "x" * (32 * MIB)},
            "invocation_id": str(uuid.uuid4()),
        }
    )
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < deadline:
            try:
                async with websockets.connect(target.url, max_size=2**26, compression=None) as ws:
                    await ws.recv()
                    await ws.send(body)
                    while json.loads(await ws.recv()).get("type") != "invocationresult":
                        pass
                    seen["answered"] += 1
            except websockets.ConnectionClosed as exc:
                seen[f"closed {exc.rcvd.code if exc.rcvd else 1006}"] += 1

    await asyncio.gather(*(client() for _ in range(24)))
    return _summary(seen)


#: The abusive clients, in the order they run. Add a row to add a scenario.
SCENARIOS: dict[str, Scenario] = {
    "large-header": Scenario("one 16 MiB header per request, back to back", large_header),
    "slow-headers": Scenario("500 connections, a header byte each every 0.5 s", slow_headers),
    "slow-bodies": Scenario("500 connections, a JSON body byte each every 0.5 s", slow_bodies),
    "big-posts": Scenario("32 concurrent 16 MiB JSON POSTs, repeated", big_posts),
    "stuck-worker": Scenario(
        "a worker blocked in time.sleep, called with 256 KiB every 5 ms", stuck_worker
    ),
    "invocation-flood": Scenario(
        "invocations as fast as a socket takes them, executor serving 80/s", invocation_flood
    ),
    "large-frames": Scenario("24 sockets sending 32 MiB messages, repeated", large_frames),
}


# -- helper processes ---------------------------------------------------------------------------


def routes_worker(url: str) -> None:
    """The routes the abusers and health checks use; runs until stdin closes."""
    import iii

    client = iii.register_worker(url)
    routes = {
        "/health": ("GET", lambda d: {"body": "ok"}),
        "/upload": ("POST", lambda d: {"body": "done"}),
        "/big": ("POST", lambda d: {"body": len(d["body"] or "")}),
    }
    for path, (method, handler) in routes.items():
        function_id = "bench::" + path[1:]
        client.register_function(function_id, handler)
        config = {"api_path": path, "http_method": method}
        client.register_trigger({"type": "http", "function_id": function_id, "config": config})
    print("ready", flush=True)
    sys.stdin.read()
    client.shutdown()


#: Niceness of the route worker and the abusers: on a machine of two cores their own CPU use
#: (parsing 16 MiB frames, pushing bytes) would otherwise be measured as the engine's doing.
NICE = 10


def spawn(*args: str, nice: int = 0) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OTEL_ENABLED": "false"}
    return subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the engine's own (rate-limited) warnings
        text=True,
        env=env,
        cwd=ROOT,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )


_spec = importlib.util.spec_from_file_location("bench_http", ROOT / "bench" / "http.py")
assert _spec is not None and _spec.loader is not None
bench_http: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_http)
#: ``read_until(proc, needle) -> line``: the first line of ``proc`` naming ``needle``.
read_until: Callable[[subprocess.Popen[str], str], str] = bench_http.wait_line


def vm_mib(pid: int, field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of ``pid`` in MiB."""
    return float(limits_support.vm_kib(pid, field)) / 1024


# -- the measurement ----------------------------------------------------------------------------


class Caller:
    """A worker calling its own function every ``interval`` seconds (this process)."""

    def __init__(self, url: str, interval: float) -> None:
        import iii

        self.client = iii.III(url)
        self.interval = interval

    async def start(self) -> None:
        self.client.register_function("bench::self", lambda data: data)
        await self.client.connect()
        for _ in range(200):
            with contextlib.suppress(Exception):
                await self.client.trigger_async({"function_id": "bench::self", "payload": 0})
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("bench::self never answered")

    async def measure(self, seconds: float) -> tuple[list[float], int]:
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        errors = 0
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            start = loop.time()
            try:
                request = {"function_id": "bench::self", "payload": {"t": start}}
                await asyncio.wait_for(self.client.trigger_async(request), 5)
                latencies.append(loop.time() - start)
            except Exception:
                errors += 1
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - start)))
        return latencies, errors


async def health(port: int) -> float:
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
    status = await _status(reader, 10)
    writer.close()
    if status != "200":
        return float("inf")
    return time.monotonic() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else 0.0


async def run(args: argparse.Namespace) -> None:
    names = args.scenario or list(SCENARIOS)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "engine.yaml"
        config.write_text(
            "workers:\n"
            "  - {name: iii-worker-manager, config: {host: 127.0.0.1, port: 0}}\n"
            "  - {name: iii-http, config: {host: 127.0.0.1, port: 0}}\n"
        )
        engine = spawn("-m", "iii_asgi", "engine", "--config", str(config))
        procs = [engine]
        try:
            url = read_until(engine, "listening on").split()[-1]
            http_port = int(read_until(engine, "HTTP triggers on").rsplit(":", 1)[1])
            routes = spawn(__file__, "routes", url, nice=NICE)
            procs.append(routes)
            read_until(routes, "ready")
            caller = Caller(url, args.interval_ms / 1000)
            await caller.start()
            print(
                f"caller: a worker calling its own function every {args.interval_ms} ms; "
                f"{args.seconds:g} s per row; engine pid {engine.pid}"
            )
            print(
                f"{'scenario':16} {'p50 ms':>7} {'p99 ms':>7} {'p50 x':>6} {'p99 x':>6} "
                f"{'errors':>6} {'health ms':>9} {'RSS MiB':>7}  abuser got"
            )
            latencies, errors = await caller.measure(args.seconds)
            base50, base99 = pct(latencies, 0.5), pct(latencies, 0.99)
            checks = [await health(http_port) * 1e3 for _ in range(3)]
            rss = vm_mib(engine.pid, "VmRSS")
            print(
                f"{'alone':16} {base50:7.1f} {base99:7.1f} {1:6.2f} {1:6.2f} {errors:6d} "
                f"{max(checks):9.1f} {rss:7.0f}  -"
            )
            for name in names:
                abuser = spawn(
                    __file__, "abuse", name, url, str(http_port), str(args.seconds), nice=NICE
                )
                procs.append(abuser)
                read_until(abuser, "started")
                measuring = asyncio.ensure_future(caller.measure(args.seconds))
                await asyncio.sleep(args.seconds / 2)
                checks = [await health(http_port) * 1e3 for _ in range(3)]
                latencies, errors = await measuring
                rss = vm_mib(engine.pid, "VmHWM")
                loop = asyncio.get_running_loop()
                got = await loop.run_in_executor(None, read_until, abuser, "result")
                p50, p99 = pct(latencies, 0.5), pct(latencies, 0.99)
                print(
                    f"{name:16} {p50:7.1f} {p99:7.1f} {p50 / base50:6.2f} {p99 / base99:6.2f} "
                    f"{errors:6d} {max(checks):9.1f} {rss:7.0f}  {got.split(' ', 1)[1].strip()}"
                )
                await asyncio.sleep(1)  # let the engine settle before the next row
            await caller.client.shutdown_async()
        finally:
            for proc in procs:
                proc.kill()
                proc.communicate()
    print("RSS: VmRSS alone, then the peak (VmHWM) so far; ratios against 'alone'.")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "routes":
        routes_worker(sys.argv[2])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "abuse":
        name, url, port, seconds = sys.argv[2:6]
        print("started", flush=True)
        got = asyncio.run(SCENARIOS[name].abuse(Target(url, int(port)), float(seconds)))
        print("result", got, flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measuring time per row")
    parser.add_argument("--interval-ms", type=float, default=10.0, help="caller's period")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable); default: all, in table order",
    )
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(run(args))
    except ImportError:  # pragma: no cover
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
