"""Cron (builtins.md §9): expression translation, registration errors, seconds-level firing."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
from croniter import croniter
from engine_wire import Wire

from iii_asgi.engine import EngineThread
from iii_asgi.engine.workers.cron.worker import to_croniter

pytestmark = pytest.mark.adapters

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")


def nexts(expression: str, start: datetime, n: int = 3) -> list[datetime]:
    it = croniter(to_croniter(expression), start, day_or=False)
    return [it.get_next(datetime) for _ in range(n)]


def test_translation_field_order_and_weekdays() -> None:
    assert to_croniter("*/5 * * * * *") == "* * * * * */5"
    assert to_croniter("0 30 9 * * 2-6") == "30 9 * * 1-5 0"  # Mon–Fri: engine 2–6
    assert to_croniter("0 0 0 ? * SUN,7 2030") == "0 0 * * SUN,6 0 2030"
    assert to_croniter("0 0 0 * * 2/3") == "0 0 * * 1-6/3 0"
    for bad in ("* * * * *", "* * * * * * * *", "0 0 0 * * 0", "0 0 0 * * 8", "0 0 0 * * XYZ"):
        with pytest.raises(ValueError):
            to_croniter(bad)


def test_translated_schedules_match_the_engine_meaning() -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)  # a Thursday
    assert [d.second for d in nexts("*/20 * * * * *", start)] == [20, 40, 0]
    sundays = nexts("0 0 12 * * 1", start)  # 1 = Sunday
    assert all(d.weekday() == 6 and d.hour == 12 for d in sundays)
    assert nexts("0 0 0 * * MON", start)[0] == datetime(2026, 1, 5, tzinfo=timezone.utc)
    # day-of-month AND day-of-week: the 13th that is a Friday (6)
    friday_13 = nexts("0 0 0 13 * 6", start, 1)[0]
    assert (friday_13.day, friday_13.weekday()) == (13, 4)
    assert nexts("0 0 0 1 1 * 2030", start, 1)[0].year == 2030


async def register(wire: Wire, trigger_id: str, config: Any, function_id: str = "c::tick") -> None:
    await wire.send(
        {
            "type": "registertrigger",
            "id": trigger_id,
            "trigger_type": "cron",
            "function_id": function_id,
            "config": config,
            "metadata": {"m": trigger_id},
        }
    )


async def test_fires_every_second_with_the_exact_payload(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url, name="c")
    await wire.send({"type": "registerfunction", "id": "c::tick"})
    await register(wire, "job-1", {"expression": "* * * * * *"})
    calls = [await wire.serve_one(lambda d: None) for _ in range(2)]
    for call in calls:
        payload = call["data"]
        assert set(payload) == {"trigger", "job_id", "scheduled_time", "actual_time"}
        assert payload["trigger"] == "cron" and payload["job_id"] == "job-1"
        assert RFC3339.match(payload["scheduled_time"]) and RFC3339.match(payload["actual_time"])
        assert "." not in payload["scheduled_time"]  # whole seconds
        assert payload["actual_time"] >= payload["scheduled_time"]
        assert call["metadata"] == {"m": "job-1"}
    first, second = (c["data"]["scheduled_time"] for c in calls)
    assert second > first
    await wire.send({"type": "unregistertrigger", "id": "job-1", "trigger_type": "cron"})
    await wire.sync()
    await wire.silent(1.3)  # removed: no more fires


async def test_one_fire_per_schedule_for_several_processes(engine: EngineThread) -> None:
    owner = await Wire.connect(engine.url, name="proc")
    await owner.send({"type": "registerfunction", "id": "c::tick"})
    await register(owner, "p1", {"expression": "* * * * * *"})
    twin = await Wire.connect(engine.url, name="proc2")
    await register(twin, "p2", {"expression": "* * * * * *"})  # same function and schedule
    await twin.sync()
    seen = [(await owner.serve_one(lambda d: None))["data"] for _ in range(3)]
    times = [p["scheduled_time"] for p in seen]
    assert len(set(times)) == 3  # each scheduled second fired once
    assert {p["job_id"] for p in seen} == {"p1"}


async def test_condition_false_skips(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url, name="c")
    await wire.send({"type": "registerfunction", "id": "c::tick"})
    await wire.send({"type": "registerfunction", "id": "c::never"})
    await register(wire, "j", {"expression": "* * * * * *", "condition_function_id": "c::never"})
    for _ in range(2):
        check = await wire.recv_type("invokefunction")
        assert check["function_id"] == "c::never"
        assert check["data"]["trigger"] == "cron"
        await wire.send(
            {"type": "invocationresult", "invocation_id": check["invocation_id"], "result": False}
        )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "Cron expression is required"),
        ({"expression": ""}, "Cron expression is required"),
        ({"expression": "* * * * *"}, "Invalid cron expression '* * * * *': expected 6 or 7"),
        ({"expression": "99 * * * * *"}, "Invalid cron expression '99 * * * * *'"),
        ({"expression": "0 0 0 * * 0"}, "out of range 1-7"),
    ],
)
async def test_registration_errors(engine: EngineThread, config: Any, message: str) -> None:
    wire = await Wire.connect(engine.url, name="c")
    await register(wire, "bad", config)
    ack = await wire.recv_type("triggerregistrationresult")
    assert ack["id"] == "bad"
    assert ack["error"]["code"] == "trigger_registration_failed"
    assert message in ack["error"]["message"]
