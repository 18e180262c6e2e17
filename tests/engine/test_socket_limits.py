"""Worker-socket limits (issue 13, docs/engine.md "Limits"), through real sockets.

Each test runs a misbehaving client beside a well-behaved worker (``steady``: a separate
process calling its own function 40 times a second through the engine) and checks both the
refusal the misbehaving client gets and that the steady worker saw no error and a p99 under
200 ms meanwhile. The engine runs as ``iii-asgi engine --config`` (the limits are config-file
keys) in its own process group; its memory is read from ``/proc/<pid>/status``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from limits_peers import rss_mb
from socket_limits_support import Peer, engine_process, peer

from iii import III, TriggerActionVoid
from iii.errors import IIIInvocationError
from tests.official import run_official

pytestmark = pytest.mark.timeout(180)

STEADY_SECONDS = 6
STEADY_RATE = 40


def assert_steady(report: dict[str, Any]) -> None:
    """The well-behaved worker's calls: none failed, p99 under 1 s (the stalls guarded
    against lasted until the 30 s timeouts; a busy CI machine adds ~200 ms hiccups of its own:
    see ``limits_support.P99_S``)."""
    assert report["errors"] == 0, report
    assert report["calls"] >= STEADY_SECONDS * STEADY_RATE * 0.5, report
    assert report["p99_ms"] < 1000, report


async def _outcome(coro: Any) -> tuple[str, float]:
    started = time.monotonic()
    try:
        await coro
        code = "ok"
    except IIIInvocationError as exc:
        code = exc.code
    return code, time.monotonic() - started


async def test_stuck_worker_fails_fast_and_nothing_else_waits(tmp_path: Path) -> None:
    """A worker whose handler blocks its loop stops reading; once its queue is full, calls to
    it fail at once with WORKER_BACKPRESSURE, while its caller's other calls and the steady
    worker go on (before: the caller's read loop, and so everyone calling the caller, hung)."""
    engine = engine_process(tmp_path, outbound_queue_size=64, outbound_queue_bytes=1 << 20)
    stuck = steady = None
    client = III(engine.url)
    try:
        stuck = peer("stuck", engine.url, 8)
        stuck.wait_for("READY")
        await client.connect()
        client.register_function("caller::ok", lambda data: "ok")
        steady = peer("steady", engine.url, STEADY_SECONDS, STEADY_RATE)
        steady.wait_for("READY")

        await client.trigger_async(
            {"function_id": "stuck::block", "payload": {}, "action": TriggerActionVoid()}
        )
        blob = "x" * (128 * 1024)  # fills the kernel's socket buffers in a few dozen calls
        calls: list[asyncio.Task[tuple[str, float]]] = []
        refused: list[float] = []
        for _ in range(400):
            call = client.trigger_async(
                {"function_id": "stuck::ok", "payload": {"blob": blob}, "timeout_ms": 30_000}
            )
            calls.append(asyncio.ensure_future(_outcome(call)))
            await asyncio.sleep(0.005)
            refused = [s for t in calls if t.done() for c, s in [t.result()] if c != "ok"]
            if len(refused) >= 5:
                break
        codes = {t.result()[0] for t in calls if t.done()}
        assert codes == {"WORKER_BACKPRESSURE"}, codes
        assert max(refused) < 2.0, refused  # answered at once, not queued (that is 30 s)

        # The caller's own calls and its function go on while the worker is stuck.
        for _ in range(5):
            code, seconds = await _outcome(
                client.trigger_async({"function_id": "caller::ok", "payload": {}})
            )
            assert (code, seconds < 1.0) == ("ok", True), (code, seconds)  # stalled: 30 s
        report = steady.report(STEADY_SECONDS + 30)
        print("STUCK", len(calls), refused, report)
        assert_steady(report)

        # The worker wakes, reads what was queued, and answers every accepted call.
        outcomes = await asyncio.gather(*calls)
        assert {c for c, _ in outcomes} == {"ok", "WORKER_BACKPRESSURE"}
    finally:
        await client.shutdown_async()
        for process in (stuck, steady, engine):
            if process is not None:
                process.kill()


class RssSampler:
    """Peak RSS of a process, sampled every 50 ms on a thread while in use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mb(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(0.05):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except OSError:
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(5)


async def active_invocations(client: III, name_prefix: str) -> int:
    """``active_invocations`` of the worker whose name starts with ``name_prefix``."""
    workers = await client.trigger_async({"function_id": "engine::workers::list", "payload": {}})
    return sum(
        w["active_invocations"] for w in workers["workers"] if w["name"].startswith(name_prefix)
    )


def status(slow: Peer) -> dict[str, Any]:
    assert slow.proc.stdin is not None
    slow.proc.stdin.write("status\n")
    slow.proc.stdin.flush()
    return slow.report()


async def test_invocation_flood_is_refused_and_memory_stays_bounded(tmp_path: Path) -> None:
    """50 000 invocations sent as fast as a socket takes them at an executor serving 80 a
    second: the engine routes no more than the executor said it can hold (2 × its
    max_concurrent_handlers, 2048), refuses the rest at once with WORKER_BACKPRESSURE, the
    executor runs at most 1024 handlers, and neither process grows by more than 150 / 100 MB
    (measured: +3 MB each; before, 300 000 calls took the executor from 41 MB to 1.25 GB)."""
    engine = engine_process(tmp_path)
    slow = flood = steady = None
    try:
        slow = peer("slow", engine.url, 12.5, 1)  # one call at a time: 80 a second
        slow.wait_for("READY")
        idle = {"engine": rss_mb(engine.proc.pid), "executor": status(slow)["rss_mb"]}
        steady = peer("steady", engine.url, STEADY_SECONDS, STEADY_RATE)
        steady.wait_for("READY")
        with RssSampler(engine.proc.pid) as engine_rss:
            flood = peer("flood", engine.url, "slow::work", 50_000)
            flood.wait_for("READY")
            report = flood.report(120)
            calm = steady.report(STEADY_SECONDS + 30)
        executor = status(slow)
        print("FLOOD", idle, round(engine_rss.peak, 1), executor, report, calm)
        assert_steady(calm)
        codes = report["codes"]
        assert codes["WORKER_BACKPRESSURE"] >= 47_000, report
        assert set(codes) <= {"WORKER_BACKPRESSURE", "ok"}, report
        assert report["refusal_ms_max"] < 5000, report  # answered, never queued behind others
        assert executor["peak"] <= 1024, executor  # max_concurrent_handlers; the rest waited
        assert codes.get("ok", 0) <= executor["done"], (report, executor)
        assert engine_rss.peak < idle["engine"] + 150, (idle, engine_rss.peak)
        assert executor["rss_peak_mb"] < idle["executor"] + 100, (idle, executor)
    finally:
        for process in (flood, steady, slow, engine):
            if process is not None:
                process.kill()


async def test_timed_out_calls_are_stopped_at_the_executor(tmp_path: Path) -> None:
    """Calls whose caller gives up (timeout_ms 1000) are dropped from the engine's pending
    map and the executor is told: our SDK cancels the running handlers and drops the waiting
    ones (before: 20 000 timed-out calls stayed pending and kept running at the executor)."""
    engine = engine_process(tmp_path)
    slow = steady = None
    client = III(engine.url)
    try:
        slow = peer("slow", engine.url, 60_000)  # each handler would sleep a minute
        slow.wait_for("READY")
        await client.connect()
        steady = peer("steady", engine.url, STEADY_SECONDS, STEADY_RATE)
        steady.wait_for("READY")
        calls = [
            _outcome(
                client.trigger_async(
                    {"function_id": "slow::work", "payload": {"i": i}, "timeout_ms": 1000}
                )
            )
            for i in range(3000)
        ]
        outcomes = await asyncio.gather(*calls)
        codes: dict[str, int] = {}
        for code, _ in outcomes:
            codes[code] = codes.get(code, 0) + 1
        assert codes.get("TIMEOUT", 0) == 2048, codes  # what the executor said it can hold
        assert codes.get("WORKER_BACKPRESSURE", 0) == 3000 - 2048, codes
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            executor = status(slow)
            pending = await active_invocations(client, "limits-peer-slow")
            if executor["running"] == 0 and pending == 0:
                break
            await asyncio.sleep(0.2)
        print("TIMEOUTS", codes, executor, pending)
        assert pending == 0, pending
        assert executor["running"] == 0 and executor["done"] == 0, executor
        # Every handler that started was cancelled (a waiting one may start as slots free
        # before its own notice is read; it is cancelled then).
        assert executor["cancelled"] == executor["started"], executor
        assert executor["peak"] <= 1024, executor
        assert_steady(steady.report(STEADY_SECONDS + 30))
        # The executor still serves.
        assert await client.trigger_async({"function_id": "slow::ok", "payload": {}}) == "ok"
    finally:
        await client.shutdown_async()
        for process in (steady, slow, engine):
            if process is not None:
                process.kill()


OFFICIAL_EXECUTOR = """
import asyncio, iii
client = iii.register_worker("{url}")
async def slow(data):
    await asyncio.sleep(1.5)
    return "late"
client.register_function("official::slow", slow)
client.register_function("official::ok", lambda data: "ok")
for _ in range(100):  # registrations land once the connection is set up
    try:
        client.trigger({{"function_id": "official::ok", "payload": {{}}}})
        break
    except Exception:
        import time; time.sleep(0.1)
print("READY", flush=True)
import sys; sys.stdin.read()
"""


async def test_official_sdk_executor_ignores_the_stop_notice(tmp_path: Path) -> None:
    """The stop notice is an ``invocationresult`` for the id the executor runs: the official
    0.25 SDK ignores results it does not wait for (protocol.md §2.13), finishes the handler,
    and its late result is dropped by the engine; it keeps serving."""
    engine = engine_process(tmp_path)
    client = III(engine.url)
    official = run_official(OFFICIAL_EXECUTOR.format(url=engine.url), engine.url)
    try:
        official.wait_for("READY", 60)
        await client.connect()
        code, _ = await _outcome(
            client.trigger_async(
                {"function_id": "official::slow", "payload": {}, "timeout_ms": 300}
            )
        )
        assert code == "TIMEOUT"
        await asyncio.sleep(2.0)  # the handler ends, its result comes back and is dropped
        for _ in range(3):
            assert (
                await client.trigger_async({"function_id": "official::ok", "payload": {}}) == "ok"
            )
        assert await active_invocations(client, "") == 0
        assert official.proc.poll() is None
        assert not [line for line in official.errors if "Traceback" in line], official.errors
    finally:
        await client.shutdown_async()
        official.kill()
        engine.kill()


async def test_many_large_frames_are_refused_beyond_the_frame_budget(tmp_path: Path) -> None:
    """16 sockets each sending a 16 MiB message at once, against a 64 MiB frame budget: the
    messages that fit are answered, the others' sockets are closed with 1009 as they arrive,
    and the engine grows by less than 400 MB (measured: +140 MB; with no budget the same run
    took +770 MB and halved the steady worker's calls; before, 24 sockets × 64 MiB took
    4.25 GB)."""
    engine = engine_process(tmp_path, frame_budget_bytes=64 << 20)
    big = steady = None
    try:
        steady = peer("steady", engine.url, STEADY_SECONDS, STEADY_RATE)
        steady.wait_for("READY")
        idle = rss_mb(engine.proc.pid)
        with RssSampler(engine.proc.pid) as engine_rss:
            big = peer("bigframes", engine.url, 16, 16)
            big.wait_for("READY")
            outcomes = big.report(120)["outcomes"]
            calm = steady.report(STEADY_SECONDS + 30)
        print("BIGFRAMES", round(idle, 1), round(engine_rss.peak, 1), outcomes, calm)
        assert sum(outcomes.values()) == 16, outcomes
        assert outcomes.get("closed 1009", 0) >= 8, outcomes
        assert outcomes.get("answered", 0) >= 1, outcomes
        assert engine_rss.peak < idle + 400, (idle, engine_rss.peak)
        assert_steady(calm)
    finally:
        for process in (big, steady, engine):
            if process is not None:
                process.kill()
