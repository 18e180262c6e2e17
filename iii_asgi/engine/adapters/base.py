"""What a built-in worker gets from its adapter, besides a :class:`~..storage.Storage`: an
event channel to the other engines (:class:`Events`), a cron run lock (:class:`CronLock`) and
the queue's view of the other consumers (:class:`QueueCluster`). The in-process adapter
(:mod:`.local`) gives the do-nothing versions; :mod:`.redis` the shared ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..storage import QueueMessage, Storage

__all__ = ["Backend", "CronLock", "EventHandler", "Events", "QueueCluster", "SubscriberRef"]

#: ``handler(event)``: an event another engine published (called on the engine loop; must not
#: block).
EventHandler = Callable[[Any], None]


class Events(Protocol):
    """One channel of events between the engines sharing an adapter (e.g. ``state`` trigger
    payloads). The publishing engine delivers its own events itself; ``publish`` only reaches
    the others."""

    def publish(self, event: Any) -> None:
        """Send a JSON value to the other engines (in publish order; never blocks)."""

    def subscribe(self, handler: EventHandler) -> None:
        """Call ``handler`` with each event another engine publishes (register before the
        engine starts)."""


class CronLock(Protocol):
    """Once-per-tick execution of a cron schedule registered on several engines."""

    async def acquire(self, job: str, tick_ms: int) -> bool:
        """True if this engine runs ``job``'s tick ``tick_ms`` (Unix ms of the scheduled
        time): no engine ran that tick or a later one, and none is running ``job`` now."""

    async def release(self, job: str) -> None:
        """The run started by the last successful :meth:`acquire` of ``job`` is over."""


@dataclass(frozen=True)
class SubscriberRef:
    """A durable subscriber's queue as every engine sees it: where a publish puts a copy."""

    queue: str
    function_id: str
    namespace: str
    config: dict[str, Any] = field(default_factory=dict)  # the QueueConfig fields


class QueueCluster(Protocol):
    """The queue consumers of the other engines sharing the queue adapter."""

    def listen(self, wake: Callable[[str | None], None], poll_ms: int) -> None:
        """``wake(queue)`` when another engine stored due messages in ``queue``, and
        ``wake(None)`` every ``poll_ms`` (delayed retries and expired leases of other
        engines)."""

    def notify(self, queue: str) -> None:
        """Tell the other engines that ``queue`` has due messages."""

    async def consume(self, queue: str, subscriber: tuple[str, SubscriberRef] | None) -> None:
        """This engine consumes ``queue`` (for a durable subscriber: ``(topic, ref)``)."""

    async def stop_consuming(self, queue: str) -> None:
        """This engine no longer consumes ``queue``."""

    async def subscribers(self, topic: str) -> list[SubscriberRef]:
        """The durable subscribers of ``topic`` consumed by any engine (the local adapter:
        none beyond this engine's, so ``[]``)."""

    async def defer(self, message: QueueMessage) -> bool:
        """``message``'s function is not registered on this engine: give the claimed message
        back for an engine that has it (True), or False when every consuming engine already
        passed it on (the attempt then fails as usual)."""


class Backend(Protocol):
    """One adapter instance of an engine (``local``, or one Redis), shared by the built-ins
    configured on it."""

    name: str
    storage: Storage

    def events(self, channel: str) -> Events: ...

    def cron_lock(self, ttl_ms: int) -> CronLock: ...

    def queue_cluster(self) -> QueueCluster: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...
