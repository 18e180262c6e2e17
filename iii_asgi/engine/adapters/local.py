"""The in-process adapter (``local``; the real engine's ``kv``, ``builtin``, ``local``): the
engine's own store (memory, or SQLite in ``data_dir``), and nobody else to tell."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..storage import QueueMessage, Storage, create_storage
from .base import CronLock, EventHandler, Events, QueueCluster, SubscriberRef

__all__ = ["NO_EVENTS", "LocalBackend", "LocalCronLock", "LocalQueues"]


class _NoEvents:
    """No other engine: publishing is a no-op, nothing ever arrives."""

    def publish(self, event: Any) -> None:
        pass

    def subscribe(self, handler: EventHandler) -> None:
        pass


#: The event channel of a built-in that shares nothing.
NO_EVENTS: Events = _NoEvents()


class LocalCronLock:
    """One engine: every tick is this engine's (the cron worker already runs one loop per
    schedule)."""

    async def acquire(self, job: str, tick_ms: int) -> bool:
        return True

    async def release(self, job: str) -> None:
        pass


class LocalQueues:
    """No other consumer: nothing to hear, tell or hand over."""

    def listen(self, wake: Callable[[str | None], None], poll_ms: int) -> None:
        pass

    def notify(self, queue: str) -> None:
        pass

    async def consume(self, queue: str, subscriber: tuple[str, SubscriberRef] | None) -> None:
        pass

    async def stop_consuming(self, queue: str) -> None:
        pass

    async def subscribers(self, topic: str) -> list[SubscriberRef]:
        return []

    async def defer(self, message: QueueMessage) -> bool:
        return False


class LocalBackend:
    """The ``local`` adapter: :func:`~..storage.create_storage` of ``data_dir``."""

    name = "local"

    def __init__(self, data_dir: str | os.PathLike[str] | None) -> None:
        self.storage: Storage = create_storage(data_dir)

    def events(self, channel: str) -> Events:
        return NO_EVENTS

    def cron_lock(self, ttl_ms: int) -> CronLock:
        return LocalCronLock()

    def queue_cluster(self) -> QueueCluster:
        return LocalQueues()

    async def open(self) -> None:
        await self.storage.open()

    async def close(self) -> None:
        await self.storage.close()
