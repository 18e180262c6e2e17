"""Bounds of the HTTP trigger port (issue 13), through real sockets: each test shows the
refusal an abusive client gets and that a well-behaved worker calling its own function at a
steady rate meanwhile sees no error and a p99 under 200 ms (:class:`Steady`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from http_support import route, routed, worker
from limits_support import (
    Steady,
    closed,
    gathered,
    open_http,
    read_response,
    request,
    send_quietly,
)

from iii_asgi.engine import EngineThread

GET = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n"


def port_of(engine: EngineThread) -> int:
    port = engine.engine.http_port
    assert port is not None
    return port


async def health(port: int) -> float:
    """Seconds a health check takes; asserts it answered 200."""
    start = time.monotonic()
    status, _, body = await request(port, "GET", "/health")
    assert status == 200 and body == b'"ok"', (status, body)
    return time.monotonic() - start


async def serve_health(w: Any, engine: EngineThread, extra: int = 0) -> None:
    route(w, "lim::health", lambda d: {"body": "ok"}, "/health")
    await routed(engine, 1 + extra)


# -- the request head --------------------------------------------------------------------------


async def test_large_header_is_431_at_the_limit_not_after_the_whole_header(
    engine: EngineThread,
) -> None:
    port = port_of(engine)
    async with worker(engine) as w, Steady(engine.url) as steady:
        await serve_health(w, engine)
        # Just under the 64 KiB default: served.
        ok = await request(port, "GET", "/health", headers=["x-big: " + "a" * 60_000])
        assert ok[0] == 200
        for size in (1 << 20, 16 << 20):  # 1 MiB and 16 MiB headers: refused alike
            reader, writer = await open_http(port)
            start = time.monotonic()
            async with gathered(send_quietly(writer, GET + b"x-big: " + b"a" * size)):
                status, headers, body = await read_response(reader)
                took = time.monotonic() - start
                assert status == 431 and b"HEADERS_TOO_LARGE" in body, (status, body)
                assert headers["connection"] == "close"
                assert await closed(reader)
            writer.close()
            assert took < 3.0, f"{size} bytes: 431 after {took:.2f} s"  # was 20 s at 128 MiB
        # 100k small headers: over the count (hyper's 100) long before the byte limit.
        many = b"".join(b"x-%d: 1\r\n" % i for i in range(100_000))
        reader, writer = await open_http(port)
        async with gathered(send_quietly(writer, GET + many + b"\r\n")):
            status, _, body = await read_response(reader)
        writer.close()
        assert status == 431 and b"HEADERS_TOO_LARGE" in body
        assert await health(port) < 1.0
    print(steady.check())


async def test_long_request_line_is_414(engine: EngineThread) -> None:
    port = port_of(engine)
    async with worker(engine) as w, Steady(engine.url) as steady:
        await serve_health(w, engine)
        status, _, _ = await request(port, "GET", "/health?q=" + "a" * 20_000)
        assert status == 200  # under the 32 KiB default
        reader, writer = await open_http(port)
        line = b"GET /health?q=" + b"a" * (8 << 20) + b" HTTP/1.1\r\n"
        async with gathered(send_quietly(writer, line)):
            status, headers, body = await read_response(reader)
        writer.close()
        assert status == 414 and b"URI_TOO_LONG" in body and headers["connection"] == "close"
        assert await health(port) < 1.0
    print(steady.check())


async def test_slow_headers_get_408_and_a_health_check_still_answers(
    engine_factory: Any,
) -> None:
    engine = engine_factory(http_header_timeout_ms=1000)
    port = port_of(engine)
    slow = 300

    async def slow_head() -> tuple[int, float]:
        reader, writer = await open_http(port)
        start = time.monotonic()
        try:
            writer.write(GET)
            for _ in range(100):  # a header byte every 100 ms, never finished
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.1)
                if reader.at_eof() or reader._buffer:  # type: ignore[attr-defined]
                    break
            status, _, _ = await read_response(reader)
            return status, time.monotonic() - start
        finally:
            writer.close()

    async with worker(engine) as w, Steady(engine.url) as steady:
        await serve_health(w, engine)
        async with gathered(*(slow_head() for _ in range(slow))) as tasks:
            await asyncio.sleep(0.3)  # all connected and trickling
            checks = [await health(port) for _ in range(5)]
            outcomes = await asyncio.gather(*tasks)
        assert max(checks) < 1.0, checks
        assert {status for status, _ in outcomes} == {408}
        assert max(took for _, took in outcomes) < 4.0  # 1 s timeout, on a busy machine
        # A connection that never sends a byte is closed, without a response.
        reader, writer = await open_http(port)
        assert await closed(reader, timeout=4.0)
        assert reader.at_eof()
        writer.close()
    print(f"health checks {max(checks) * 1e3:.0f} ms max beside {slow} slow heads;", steady.check())


# -- the request body --------------------------------------------------------------------------


async def test_slow_bodies_get_408_and_hold_no_request_slot(engine_factory: Any) -> None:
    """Slow uploads wait for their bodies outside ``http_concurrency_limit``: with 8 slots and
    200 clients trickling JSON bodies, a health check still answers at once."""
    engine = engine_factory(http_concurrency_limit=8, http_body_timeout_ms=1000)
    port = port_of(engine)
    slow = 200

    async def slow_body(trickle: bool) -> int:
        reader, writer = await open_http(port)
        try:
            writer.write(
                b"POST /upload HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json"
                b"\r\ncontent-length: 1000\r\n\r\n["
            )
            if trickle:  # bytes every 0.4 s: never silent for the timeout, never done
                for _ in range(4):
                    await asyncio.sleep(0.4)
                    writer.write(b"1,")
                    await writer.drain()
            return (await read_response(reader, timeout=10))[0]
        finally:
            writer.close()

    async with worker(engine) as w, Steady(engine.url) as steady:
        route(w, "lim::upload", lambda d: {"body": len(d["body"])}, "/upload", "POST")
        await serve_health(w, engine, extra=1)
        async with gathered(*(slow_body(i % 2 == 0) for i in range(slow))) as tasks:
            await asyncio.sleep(0.5)
            checks = [await health(port) for _ in range(5)]
            statuses = await asyncio.gather(*tasks)
        assert max(checks) < 1.0, checks
        # Silent ones: 408 after 1 s; trickling ones 1 s after their last byte.
        assert statuses == [408] * slow, statuses
    took = max(checks) * 1e3
    print(f"health checks {took:.0f} ms max beside {slow} slow bodies;", steady.check())


async def test_idle_keep_alive_is_closed(engine_factory: Any) -> None:
    engine = engine_factory(http_keep_alive_timeout_ms=300)
    port = port_of(engine)
    async with worker(engine) as w, Steady(engine.url) as steady:
        await serve_health(w, engine)
        reader, writer = await open_http(port)
        writer.write(GET + b"\r\n")
        assert (await read_response(reader))[0] == 200
        start = time.monotonic()
        assert await closed(reader, timeout=3)
        assert 0.2 < time.monotonic() - start < 2.5
        writer.close()
        # Bare CRLFs begin no request: they do not keep the connection open.
        reader, writer = await open_http(port)
        writer.write(GET + b"\r\n")
        assert (await read_response(reader))[0] == 200
        start = time.monotonic()

        async def crlf() -> None:
            while True:
                writer.write(b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)

        async with gathered(crlf()):
            assert await closed(reader, timeout=3)
        assert time.monotonic() - start < 2.5
        writer.close()
    print(steady.check())


# -- connections -------------------------------------------------------------------------------


async def test_connection_cap_evicts_idle_then_slow_then_refuses_503(
    engine_factory: Any,
) -> None:
    cap = 20
    engine = engine_factory(http_max_connections=cap)
    port = port_of(engine)
    release = asyncio.Event()

    async def blocked(data: Any) -> Any:
        await release.wait()
        return {"body": "done"}

    async with worker(engine) as w, Steady(engine.url) as steady:
        route(w, "lim::block", blocked, "/block")
        await serve_health(w, engine, extra=1)
        # 1. The listener full of idle keep-alive connections: the oldest goes first.
        idle = []
        for _ in range(cap):
            reader, writer = await open_http(port)
            writer.write(GET + b"\r\n")
            assert (await read_response(reader))[0] == 200
            idle.append((reader, writer))
        assert await health(port) < 1.0
        assert await closed(idle[0][0], timeout=2)
        assert not idle[-1][0].at_eof()
        # 2. Full of slow heads (each new one evicted an idle connection): a health check
        # evicts the slow head read least recently, which gets 408.
        slow = []
        for _ in range(cap):
            reader, writer = await open_http(port)
            writer.write(GET + b"x-slow: ")
            await writer.drain()
            slow.append((reader, writer))
            await asyncio.sleep(0.005)  # distinct arrival order
        for reader, _ in idle[1:]:
            assert await closed(reader, timeout=2)
        assert await health(port) < 1.0
        status, _, body = await read_response(slow[0][0])
        assert status == 408 and b"REQUEST_TIMEOUT" in body
        # 3. Every connection busy with the engine: a new one gets 503, until they finish.
        busy = []
        for _ in range(cap):
            reader, writer = await open_http(port)
            writer.write(b"GET /block HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            busy.append((reader, writer))
        http_worker = engine.workers.http
        assert http_worker is not None
        pool = http_worker.connections

        def all_busy() -> bool:
            return len(pool) == cap and not any(c.waiting_on_client() for c in pool.open)

        deadline = time.monotonic() + 5
        while not all_busy():
            assert time.monotonic() < deadline, "the blocked requests did not all arrive"
            await asyncio.sleep(0.01)
        status, _, body = await request(port, "GET", "/health")
        assert status == 503 and b"TOO_MANY_CONNECTIONS" in body, (status, body)
        release.set()
        for reader, _ in busy:
            assert (await read_response(reader))[0] == 200
        assert await health(port) < 1.0
        for _, writer in idle + slow + busy:
            writer.close()
    print(f"evicted {pool.evicted}, refused {pool.refused};", steady.check())
