"""Bad input is logged rate-limited with a count of suppressed lines, and long fields are
truncated (issue 13: 100k bad frames wrote 15.7 MB of log in 2 s; an 8 MB field was logged
verbatim)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from engine_wire import Wire
from limits_support import SteadyProcess, open_http, read_response

from iii_asgi.engine import EngineThread
from iii_asgi.engine.core.logs import BURST, RATE, RateLimitedLogger, truncate


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_per_key_counts_what_it_suppresses(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RateLimitedLogger(logging.getLogger("test.throttle"), rate=2.0, burst=3, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        logged = [log.warning("a", "bad %d", i) for i in range(100)]
        assert logged.count(True) == 3
        assert log.warning("b", "other key")  # keys have their own buckets
        clock.now = 1.0  # two tokens back
        assert log.warning("a", "bad again")
        assert log.warning("a", "bad again")
        assert not log.warning("a", "bad again")
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:4] == ["bad 0", "bad 1", "bad 2", "other key"]
    assert messages[4] == "bad again (97 similar lines suppressed)"
    assert messages[5] == "bad again"


def test_truncate() -> None:
    assert truncate("short") == "short"
    long = "x" * 8_000_000
    cut = truncate(long)
    assert cut.startswith("x" * 300) and cut.endswith("… (8000000 chars)") and len(cut) < 330
    assert truncate(ValueError("y" * 1000), 10) == "yyyyyyyyyy… (1000 chars)"
    assert truncate(b"z" * 1000, 20).endswith("… (1000 bytes)")
    assert truncate({"k": "v"}) == "{'k': 'v'}"


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def test_a_flood_of_bad_frames_logs_a_few_lines(
    engine: EngineThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="iii_asgi.engine")
    frames = 5_000
    async with SteadyProcess(engine.url) as steady:
        wire = await Wire.connect(engine.url)
        start = time.monotonic()
        for i in range(frames):
            await wire.send(f"{{not json {i}")
        await wire.sync()
        elapsed = time.monotonic() - start
        flood = lines(caplog, "dropping malformed frame")
        assert len(flood) <= BURST + RATE * elapsed + 1, (len(flood), elapsed)
        await asyncio.sleep(1.1 / RATE)  # a token back: the next line reports the rest
        await wire.send("{still not json")
        await wire.sync()
    last = lines(caplog, "dropping malformed frame")[-1]
    assert "similar lines suppressed)" in last, last
    print(f"{frames} bad frames in {elapsed:.1f} s: {len(flood)} lines;", steady.check())


async def test_an_8_mb_field_is_not_logged_verbatim(
    engine: EngineThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="iii_asgi.engine")
    big = "x" * (8 << 20)
    wire = await Wire.connect(engine.url, name=big)  # the worker's name shows in every line
    await wire.send({"type": big})  # an unknown frame type
    action = {"type": "invokefunction", "function_id": "f", "invocation_id": "i"}
    await wire.send({**action, "action": {"type": "nope", "data": big}})
    await wire.sync()
    logged = lines(caplog, "ignoring") + lines(caplog, "dropping malformed frame")
    assert len(logged) == 2, [m[:200] for m in logged]
    assert max(len(m) for m in logged) < 2000, [len(m) for m in logged]
    assert all("chars)" in m for m in logged)


async def test_bad_http_requests_are_throttled(
    engine: EngineThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="iii_asgi.engine.http")
    port = engine.engine.http_port
    assert port is not None
    start = time.monotonic()
    for _ in range(200):
        reader, writer = await open_http(port)
        writer.write(b"\x00\x01garbage that is no HTTP\r\n\r\n")
        status, _, body = await read_response(reader)
        assert status == 400 and json.loads(body)["error"]["code"] == "BAD_REQUEST"
        writer.close()
    elapsed = time.monotonic() - start
    logged = lines(caplog, "invalid HTTP request")
    assert 1 <= len(logged) <= BURST + RATE * elapsed + 1, (len(logged), elapsed)
