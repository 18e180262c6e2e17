"""The queue's cluster view on Redis (:class:`~.base.QueueCluster`): which engines consume
which queue, the durable subscribers of every engine, wake-ups between engines, and handing a
message over to an engine that has its function.

Keys (``P`` the key prefix):

* ``P iii:queue:consumers:<q>``: sorted set engine id → expiry (ms); every consuming engine
  refreshes its entry every :data:`HEARTBEAT_S` seconds, for :data:`TTL_S` seconds, and removes
  it when it stops consuming; a killed engine's entry expires.
* ``P iii:queue:topic:<topic>``: hash queue → ``{function_id, namespace, config}`` of each
  durable subscriber of ``topic``; a publish copies the message into every such queue that has a
  live consumer, on whichever engine.
* ``P iii:queue:passed:<q>:<id>``: engines that passed a message on because its function is not
  registered on them (expires after a minute).
* channel ``P iii:events:queue``: a queue name, when an engine stored due messages in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ..storage import QueueMessage, StorageError
from ..storage.memory import decode, encode
from .base import SubscriberRef

if TYPE_CHECKING:
    from .redis import RedisBackend

__all__ = ["DEFER_MS", "HEARTBEAT_S", "TTL_S", "RedisQueues", "stop_tasks"]

logger = logging.getLogger("iii_asgi.engine.redis")

#: Period of the consumer heartbeat.
HEARTBEAT_S = 2.0
#: How long a consumer entry lives without a heartbeat (a killed engine counts this long).
TTL_S = 10.0
#: How long this engine skips a message it passed on (the others may take it at once).
DEFER_MS = 250


def _now_ms() -> int:
    return int(time.time() * 1000)


async def stop_tasks(tasks: list[asyncio.Task[None]], timeout: float = 5.0) -> None:
    """Cancel background tasks and wait for them (at most ``timeout`` seconds: a Redis client
    reconnecting may hold a cancelled task up; the loops also stop on their own flag)."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)


@contextlib.contextmanager
def _io() -> Iterator[None]:
    """Redis failures as :class:`StorageError` (the queue logs or reports them)."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StorageError(f"redis: {exc}") from None


class RedisQueues:
    """The queue cluster of one engine on one Redis (see the module)."""

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        self.client: Any = backend.client  # replies typed for both decode_responses modes
        self.prefix = backend.prefix
        self.engine_id = backend.engine_id
        self.events = backend.events("queue")
        self.consumed: set[str] = set()
        self._wake: Callable[[str | None], None] | None = None
        self._poll_s = 0.1
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}iii:queue:{kind}:{name}"

    # -- lifecycle (driven by the backend) -----------------------------------------------------

    def listen(self, wake: Callable[[str | None], None], poll_ms: int) -> None:
        self._wake = wake
        self._poll_s = max(10, poll_ms) / 1000
        self.events.subscribe(self._notified)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._heartbeat()), loop.create_task(self._poll())]

    async def stop(self) -> None:
        self._stopping = True
        await stop_tasks(self._tasks)
        self._tasks = []
        consumed, self.consumed = list(self.consumed), set()
        with contextlib.suppress(RedisError, OSError):
            async with self.client.pipeline(transaction=False) as pipe:
                for queue in consumed:
                    pipe.zrem(self._key("consumers", queue), self.engine_id)
                await pipe.execute()

    def _notified(self, event: Any) -> None:
        if self._wake is not None and isinstance(event, str):
            self._wake(event)

    async def _poll(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._poll_s)
            if self._wake is not None:
                self._wake(None)

    async def _heartbeat(self) -> None:
        while not self._stopping:
            try:
                await self._refresh(list(self.consumed))
            except (RedisError, OSError) as exc:
                logger.warning("redis: queue consumer heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_S)

    async def _refresh(self, queues: list[str]) -> None:
        if not queues:
            return
        expiry = _now_ms() + int(TTL_S * 1000)
        async with self.client.pipeline(transaction=False) as pipe:
            for queue in queues:
                key = self._key("consumers", queue)
                pipe.zadd(key, {self.engine_id: expiry})
                pipe.zremrangebyscore(key, "-inf", _now_ms())
            await pipe.execute()

    # -- QueueCluster --------------------------------------------------------------------------

    def notify(self, queue: str) -> None:
        self.events.publish(queue)

    async def consume(self, queue: str, subscriber: tuple[str, SubscriberRef] | None) -> None:
        self.consumed.add(queue)
        with _io():
            if subscriber is not None:
                topic, ref = subscriber
                record = {"function_id": ref.function_id, "namespace": ref.namespace}
                encoded = encode({**record, "config": ref.config})
                await self.client.hset(self._key("topic", topic), queue, encoded)
            await self._refresh([queue])

    async def stop_consuming(self, queue: str) -> None:
        self.consumed.discard(queue)
        with _io():
            await self.client.zrem(self._key("consumers", queue), self.engine_id)

    async def subscribers(self, topic: str) -> list[SubscriberRef]:
        with _io():
            records = await self.client.hgetall(self._key("topic", topic))
            if not records:
                return []
            queues = sorted(records)
            now = _now_ms()
            async with self.client.pipeline(transaction=False) as pipe:
                for queue in queues:
                    pipe.zcount(self._key("consumers", queue.decode()), now, "+inf")
                live = await pipe.execute()
        refs = []
        for queue, count in zip(queues, live, strict=True):
            if count:
                record = decode(records[queue])
                refs.append(
                    SubscriberRef(
                        queue.decode(), record["function_id"], record["namespace"], record["config"]
                    )
                )
        return refs

    async def defer(self, message: QueueMessage) -> bool:
        passed = self._key("passed", f"{message.queue}:{message.id}")
        now = _now_ms()
        with _io():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.sadd(passed, self.engine_id)
                pipe.pexpire(passed, 60_000)
                pipe.smembers(passed)
                pipe.zrangebyscore(self._key("consumers", message.queue), now, "+inf")
                _, _, engines, consumers = await pipe.execute()
            if set(consumers) <= set(engines):
                await self.client.delete(passed)
                return False  # nobody has it: the attempt fails here, as on one engine
        deferred = await self.backend.store.queue_defer(message.queue, message.id, now + DEFER_MS)
        if deferred:
            self.notify(message.queue)
        return deferred
