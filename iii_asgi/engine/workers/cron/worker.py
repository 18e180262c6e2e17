"""Cron (builtins.md §9): the ``cron`` trigger type.

Config ``{expression, condition_function_id?}``. Expressions are the engine's (Quartz style,
the Rust ``cron`` crate): 6 fields ``sec min hour day-of-month month day-of-week`` or 7 with a
trailing ``year``; lists, ranges, steps, ``*``, ``?``, month and weekday names; day-of-week
1–7 with **1 = Sunday**; day-of-month and day-of-week must both match. Schedules are in UTC.
They are parsed with ``croniter`` after translation (:func:`to_croniter`): croniter wants the
seconds field *after* day-of-week and numbers weekdays 0–6 from Sunday (builtins.md §14 item 9).

Each distinct schedule ``(namespace, function_id, expression, condition)`` runs one loop, so
several processes of one worker that each register the same cron trigger fire it **once** per
scheduled time (the binding registered first names the ``job_id`` and supplies the metadata).
The loop sleeps until the next time, checks the condition (only a literal ``false`` skips; a
failing condition skips), invokes and awaits the function, then computes the next time from
*now*: fires missed while a handler ran are skipped, never caught up or overlapped. Payload:
``{"trigger": "cron", "job_id", "scheduled_time", "actual_time"}`` (RFC 3339, ``+00:00``).

With the Redis adapter the same schedule registered on several engines sharing one Redis also
runs once per scheduled time (and never twice at once) between them: before each run the engine
takes the schedule's lock for that tick (:class:`~iii_asgi.engine.adapters.base.CronLock`); an
engine that does not get it skips the tick.

Registration errors (``trigger_registration_failed``): ``Cron expression is required``,
``Invalid cron expression '<e>': <detail>``, ``Cron job '<id>' is already registered``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from croniter import croniter

from ...adapters.base import CronLock
from ...adapters.local import LocalCronLock
from ...core.errors import InvocationError
from ...core.registry import Trigger
from ...core.worker import BuiltinWorker, EngineServices

__all__ = ["Cron", "CronSchedule", "to_croniter"]

logger = logging.getLogger("iii_asgi.engine.cron")

_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DOW_ITEM = re.compile(r"^(\*|\?|[A-Za-z0-9]+)(?:-([A-Za-z0-9]+))?(?:/(\d+))?$")


def _weekday(token: str) -> str:
    """A day-of-week value of the engine (1–7, Sun = 1, or a name) in croniter's 0–6."""
    if token.isdigit():
        number = int(token)
        if not 1 <= number <= 7:
            raise ValueError(f"day of week {number} is out of range 1-7 (1 = Sunday)")
        return str(number - 1)
    name = token.upper()
    if name not in _DAYS:
        raise ValueError(f"unknown day of week {token!r}")
    return name


def _day_of_week(field_text: str) -> str:
    items = []
    for item in field_text.split(","):
        match = _DOW_ITEM.match(item)
        if match is None:
            raise ValueError(f"invalid day-of-week item {item!r}")
        start, end, step = match.groups()
        if start in ("*", "?"):
            if end is not None:
                raise ValueError(f"invalid day-of-week item {item!r}")
            text = "*"
        else:
            text = _weekday(start)
            if end is not None:
                text += "-" + _weekday(end)
            elif step is not None:  # "2/3": from that day to the end of the week
                text += "-6"
        items.append(text if step is None else f"{text}/{step}")
    return ",".join(items)


def to_croniter(expression: str) -> str:
    """Translate an engine cron expression to croniter's field order and weekday numbering.

    ``"*/5 * * * * *"`` → ``"* * * * * */5"``; ``"0 0 9 * * 2-6"`` → ``"0 9 * * 1-5 0"``.
    Raises ``ValueError`` for a wrong field count (5-field crontab strings are rejected) or a
    bad day-of-week item.
    """
    fields = expression.split()
    if len(fields) not in (6, 7):
        raise ValueError(f"expected 6 or 7 fields (seconds first), got {len(fields)}")
    sec, minute, hour, dom, month, dow, *year = fields
    dom = "*" if dom == "?" else dom
    out = [minute, hour, dom, month, _day_of_week(dow), sec, *year]
    return " ".join(out)


@dataclass(eq=False)
class CronSchedule:
    """One schedule's loop and the bindings sharing it (oldest first)."""

    key: tuple[str, str, str, str | None]
    expression: str
    iterator_expression: str
    triggers: dict[str, Trigger] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    @property
    def job(self) -> str:
        """The schedule's name across engines: ``<function_id>@<namespace>#<digest>`` (the
        digest covers the expression and condition too)."""
        namespace, function_id = self.key[0], self.key[1]
        digest = hashlib.sha1(json.dumps(self.key).encode()).hexdigest()[:12]
        return f"{function_id}@{namespace}#{digest}"

    def next_after(self, base: datetime) -> datetime:
        nxt: datetime = croniter(self.iterator_expression, base, day_or=False).get_next(datetime)
        return nxt


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat()


class Cron(BuiltinWorker):
    """The ``iii-cron`` built-in: the in-process provider of trigger type ``cron``."""

    name = "iii-cron"

    def __init__(self, core: EngineServices, lock: CronLock | None = None) -> None:
        self.core = core
        self.lock: CronLock = lock or LocalCronLock()
        self.schedules: dict[tuple[str, str, str, str | None], CronSchedule] = {}
        self.by_trigger: dict[str, CronSchedule] = {}

    def install(self) -> None:
        self.core.triggers.register_in_process("cron", "Time-based schedule (cron)", self)

    async def register_trigger(self, trigger: Trigger) -> None:
        config = trigger.config if isinstance(trigger.config, dict) else {}
        expression = config.get("expression")
        if not isinstance(expression, str) or not expression.strip():
            raise ValueError("Cron expression is required")
        if trigger.id in self.by_trigger:
            raise ValueError(f"Cron job '{trigger.id}' is already registered")
        expression = " ".join(expression.split())
        try:
            translated = to_croniter(expression)
            if not croniter.is_valid(translated):
                raise ValueError("not a valid schedule")
            croniter(translated, datetime.now(timezone.utc), day_or=False).get_next(datetime)
        except Exception as exc:  # croniter raises several error types
            raise ValueError(f"Invalid cron expression '{expression}': {exc}") from None
        condition = config.get("condition_function_id")
        key = (
            trigger.namespace,
            trigger.function_id,
            expression,
            condition if isinstance(condition, str) and condition else None,
        )
        schedule = self.schedules.get(key)
        if schedule is None:
            schedule = CronSchedule(key, expression, translated)
            self.schedules[key] = schedule
            schedule.task = asyncio.get_running_loop().create_task(self._run(schedule))
        schedule.triggers[trigger.id] = trigger
        self.by_trigger[trigger.id] = schedule

    async def unregister_trigger(self, trigger: Trigger) -> None:
        schedule = self.by_trigger.pop(trigger.id, None)
        if schedule is None:
            return
        schedule.triggers.pop(trigger.id, None)
        if not schedule.triggers:
            del self.schedules[schedule.key]
            if schedule.task is not None:
                schedule.task.cancel()

    async def stop(self) -> None:
        tasks = [s.task for s in self.schedules.values() if s.task is not None]
        self.schedules.clear()
        self.by_trigger.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, schedule: CronSchedule) -> None:
        last: datetime | None = None
        while True:
            now = datetime.now(timezone.utc)
            base = now if last is None or now > last else last
            scheduled = schedule.next_after(base)
            while True:  # timers may wake a little early: never fire before the time
                delay = (scheduled - datetime.now(timezone.utc)).total_seconds()
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            last = scheduled
            trigger = next(iter(schedule.triggers.values()), None)
            if trigger is None:
                return
            if not await self._acquire(schedule, scheduled):
                continue  # another engine runs this tick
            try:
                await self._fire(schedule, trigger, scheduled)
            finally:
                await self._release(schedule)

    async def _acquire(self, schedule: CronSchedule, scheduled: datetime) -> bool:
        try:
            return await self.lock.acquire(schedule.job, int(scheduled.timestamp() * 1000))
        except Exception as exc:  # the adapter is unreachable: skip the tick
            logger.warning("cron job %s: lock failed, tick skipped: %s", schedule.job, exc)
            return False

    async def _release(self, schedule: CronSchedule) -> None:
        try:
            await self.lock.release(schedule.job)
        except Exception as exc:  # it expires on its own
            logger.warning("cron job %s: releasing the lock failed: %s", schedule.job, exc)

    async def _fire(self, schedule: CronSchedule, trigger: Trigger, scheduled: datetime) -> None:
        payload: dict[str, Any] = {
            "trigger": "cron",
            "job_id": trigger.id,
            "scheduled_time": _rfc3339(scheduled),
            "actual_time": _rfc3339(datetime.now(timezone.utc)),
        }
        invoker = self.core.invoker
        condition = schedule.key[3]
        try:
            if condition is not None:
                verdict = await invoker.call(
                    condition, payload, namespace=trigger.namespace, metadata=trigger.metadata
                )
                if verdict is False:
                    return
            await invoker.call(
                trigger.function_id, payload, namespace=trigger.namespace, metadata=trigger.metadata
            )
        except InvocationError as exc:
            logger.info("cron job %s → %s failed: %s", trigger.id, trigger.function_id, exc)
        except Exception:
            logger.exception("cron job %s failed", trigger.id)
