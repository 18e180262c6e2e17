"""One queue's consumer: attempts, exponential backoff, concurrency, dead letters (builtins.md
§7.2 "Consumer semantics").

A :class:`MessageQueue` consumes one internal queue of the engine's :class:`Storage` (a named
queue or one durable subscriber's queue). Messages are stored (``queue_put``) before the
enqueue is answered, leased with ``queue_claim`` (due messages, oldest first) up to ``limit``
at once, and leave the store only when acknowledged (success) or dead-lettered (attempts used
up). Puts arriving during a commit, and acks of concurrent deliveries, share the next commit
(:class:`Batcher`). A failed delivery is nacked with ``front=True``: once its backoff
expires it runs next, ahead of waiting messages (§7.2). Consumption is event-driven: a put, a
finished delivery, an expired backoff or a redrive wakes the consumer; nothing polls. A message
leased when the process dies is due again when the store is reopened, so delivery is
at-least-once.

The stored ``payload`` is ``{function_id, namespace, data, max_attempts, backoff_ms,
traceparent?, baggage?}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ...config.queue import QueueConfig
from ...core.errors import InvocationError
from ...storage import QueueMessage, Storage, StorageError

__all__ = [
    "Batcher",
    "Deferred",
    "Deliver",
    "MessageQueue",
    "QueueFull",
    "now_ms",
    "put_batcher",
]

logger = logging.getLogger("iii_asgi.engine.queue")

T = TypeVar("T")

#: ``await deliver(message)``: returns to acknowledge, raises InvocationError to nack,
#: :class:`Deferred` when it gave the message back itself.
Deliver = Callable[[QueueMessage], Awaitable[None]]


class Deferred(Exception):
    """Raised by a ``deliver`` that handed the claimed message back to the store for another
    engine (no attempt counted, nothing to acknowledge)."""


def now_ms() -> int:
    return int(time.time() * 1000)


class Batcher(Generic[T]):
    """Group commit: items added while a store call is running are handed to the next call
    together, in the order they were added. ``await add(item)`` returns once the call that
    carried it returned. If ``store_one`` is given, a batch that raised :class:`StorageError`
    is retried one item at a time, so only the bad item fails."""

    def __init__(
        self,
        store_many: Callable[[list[T]], Awaitable[Any]],
        store_one: Callable[[T], Awaitable[Any]] | None = None,
    ) -> None:
        self.store_many = store_many
        self.store_one = store_one
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None

    async def add(self, item: T) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((item, future))
        if not self._flushing:
            self._flushing = True
            self._task = loop.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self.store_many([item for item, _ in batch])
                except StorageError as exc:
                    if self.store_one is None:
                        for _, future in batch:
                            _settle(future, exc)
                        continue
                    for item, future in batch:
                        try:
                            await self.store_one(item)
                        except Exception as one:
                            _settle(future, one)
                        else:
                            _settle(future, None)
                    continue
                except Exception as exc:
                    for _, future in batch:
                        _settle(future, exc)
                    continue
                for _, future in batch:
                    _settle(future, None)
        finally:
            self._flushing = False


def put_batcher(storage: Storage) -> Batcher[QueueMessage]:
    """Group commit of ``queue_put`` (messages of any queue, stored in call order)."""

    async def one(message: QueueMessage) -> None:
        await storage.queue_put([message])

    return Batcher(storage.queue_put, one)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class QueueFull(Exception):
    """The queue holds ``max_depth`` messages already."""


@dataclass(eq=False)
class MessageQueue:
    """The consumer of one internal queue. ``deliver`` is ``None`` while nobody consumes it
    (a durable subscriber queue whose triggers are all gone): its messages then wait."""

    name: str
    config: QueueConfig
    storage: Storage
    broker_type: str = "function_queue"
    deliver: Deliver | None = None
    batcher: Batcher[QueueMessage] | None = None
    running: int = 0
    depth: int = 0  # stored messages not dead-lettered (``max_depth`` applies to it)
    delivered: int = 0
    failed: int = 0
    closed: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _pump_task: asyncio.Task[None] | None = None
    _runs: dict[asyncio.Task[None], str] = field(default_factory=dict)
    _timers: set[asyncio.TimerHandle] = field(default_factory=set)
    _acks: Batcher[str] | None = None

    def __post_init__(self) -> None:
        name, storage = self.name, self.storage

        async def ack_many(ids: list[str]) -> None:
            await storage.queue_ack_many(name, ids)

        self._acks = Batcher(ack_many)  # concurrent deliveries share one commit

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start consuming; resumes backoffs of messages stored by a previous process."""
        if self._pump_task is not None:
            return
        self.depth = await self.storage.queue_depth(self.name)
        current = now_ms()
        for message in await self.storage.queue_pending(self.name):
            if message.available_at_ms > current:
                self._wake_at(message.available_at_ms)
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())
        self.wake()

    async def close(self) -> None:
        """Stop consuming. Deliveries in flight are abandoned and their leases released without
        counting an attempt (the message is delivered again later, or after a restart)."""
        self.closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        tasks = [t for t in (self._pump_task, *self._runs) if t is not None]
        leased = list(self._runs.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for message_id in leased:
            with contextlib.suppress(Exception):
                await self.storage.queue_release(self.name, message_id)

    # -- intake --------------------------------------------------------------------------------

    def full(self) -> bool:
        """True when the queue holds ``max_depth`` messages."""
        limit = self.config.max_depth
        return limit is not None and self.depth >= limit

    async def put(self, message: QueueMessage) -> None:
        """Store a new message durably (committed before this returns), then wake the consumer.
        Puts are stored in call order (no suspension before the message joins the batch).
        Raises :class:`QueueFull` when the queue holds ``max_depth`` messages."""
        if self.full():
            raise QueueFull(
                f"Queue '{self.name}' is full ({self.depth} messages, max_depth "
                f"{self.config.max_depth})"
            )
        self.depth += 1
        try:
            if self.batcher is not None:
                await self.batcher.add(message)
            else:
                await self.storage.queue_put([message])
        except BaseException:
            self.depth -= 1
            raise
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def _wake_at(self, at_ms: int) -> None:
        """Wake the consumer once the wall clock reaches ``at_ms`` (never early: the store
        compares ``available_at_ms`` with the wall clock, loop timers may fire a little soon)."""
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            if self.closed:
                return
            if now_ms() < at_ms:
                self._wake_at(at_ms)
            else:
                self.wake()

        handle = loop.call_later(max(0.0, (at_ms - now_ms()) / 1000 + 0.001), fire)
        self._timers.add(handle)

    # -- delivery ------------------------------------------------------------------------------

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            while self.deliver is not None and self.running < self.config.limit:
                try:
                    batch = await self.storage.queue_claim(
                        self.name,
                        now_ms(),
                        self.config.limit - self.running,
                        exclusive=self.config.fifo,  # one at a time across engines too
                    )
                except Exception:
                    logger.exception("queue %s: claim failed", self.name)
                    break
                if not batch:
                    break
                for message in batch:
                    self.running += 1
                    task = loop.create_task(self._run(message, self.deliver))
                    self._runs[task] = message.id
                    task.add_done_callback(self._runs.pop)

    async def _run(self, message: QueueMessage, deliver: Deliver) -> None:
        try:
            try:
                await deliver(message)
            except Deferred:
                pass
            except InvocationError as exc:
                await self._nack(message, f"{exc.code}: {exc.message}")
            except Exception as exc:
                logger.exception("queue %s: delivery of %s failed", self.name, message.id)
                await self._nack(message, f"invocation_failed: {exc}")
            else:
                assert self._acks is not None
                await self._acks.add(message.id)
                self.delivered += 1  # counted once stored: stats never show it still queued
                self.depth -= 1
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("queue %s: storing the outcome of %s failed", self.name, message.id)
        finally:
            self.running -= 1
            self.wake()

    async def _nack(self, message: QueueMessage, reason: str) -> None:
        payload: dict[str, Any] = message.payload
        attempts = message.attempts + 1
        max_attempts = int(payload.get("max_attempts", self.config.max_retries))
        logger.info(
            "queue %s: message %s attempt %d/%d failed: %s",
            self.name,
            message.id,
            attempts,
            max_attempts,
            reason,
        )
        current = now_ms()
        if attempts >= max_attempts:
            await self.storage.queue_dead_letter(self.name, message.id, reason, current)
            self.failed += 1
            self.depth -= 1
            return
        backoff = int(payload.get("backoff_ms", self.config.backoff_ms))
        due = current + backoff * 2 ** (attempts - 1)
        await self.storage.queue_nack(self.name, message.id, due, front=True)
        self._wake_at(due)

    # -- dead letters --------------------------------------------------------------------------

    async def redrive(self, message_id: str | None = None) -> int:
        """Move dead letters (all, or one by id) back with fresh attempts; returns how many."""
        ids = None if message_id is None else [message_id]
        moved = await self.storage.redrive(self.name, ids, now_ms())
        self.depth += len(moved)  # may pass max_depth: an operator asked for them
        self.wake()
        return len(moved)
