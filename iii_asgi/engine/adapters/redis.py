"""The Redis adapter (``redis``): the built-ins configured on it share their data and their
events with every engine on the same Redis (docs/engine.md, "Adapters").

One :class:`RedisBackend` per distinct ``(redis_url, key_prefix)`` of an engine holds:

* a bounded connection pool (:data:`MAX_CONNECTIONS`; callers wait for a free connection up
  to :data:`POOL_WAIT_S`, then fail with the built-in's adapter error);
* :class:`~..storage.redis.RedisStorage` (state, stream items, queued messages);
* event channels ``P iii:events:<name>`` (``state``, ``stream``, ``pubsub``, ``queue``): each
  message is ``<engine id> <JSON>``; an engine delivers its own events locally and ignores
  their echo. Outgoing events wait in one bounded outbox (:data:`OUTBOX`; when it is full new
  events are dropped with a warning) and are published in order by one task, so the other
  engines see one engine's events in the order it wrote them. A channel no other engine
  listens to is not published to: each engine counts a channel's subscribers (``PUBSUB
  NUMSUB``, every :data:`LISTENERS_S` seconds) and an engine that starts says so on
  ``P iii:events:engines`` before it serves, so the others count it at once;
* one subscriber connection reading those channels (reconnecting, and resubscribing, after a
  failure; events published meanwhile are lost, as Redis pub/sub does not keep them);
* the cron lock (:class:`RedisCronLock`) and the queue cluster (:mod:`.redis_queue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from ..storage import Storage, StorageError
from ..storage.memory import decode, encode
from ..storage.redis import RedisStorage
from .base import CronLock, EventHandler, Events, QueueCluster
from .redis_queue import RedisQueues, stop_tasks

__all__ = [
    "LISTENERS_S",
    "MAX_CONNECTIONS",
    "OUTBOX",
    "POOL_WAIT_S",
    "RedisBackend",
    "RedisCronLock",
]

logger = logging.getLogger("iii_asgi.engine.redis")

#: Connections of one engine to one Redis (commands beyond wait for a free one).
MAX_CONNECTIONS = 32
#: Seconds a command waits for a free connection before failing.
POOL_WAIT_S = 30.0
#: Events waiting to be published; further ones are dropped (logged).
OUTBOX = 10_000
#: Period of the recount of each channel's subscribers.
LISTENERS_S = 1.0

#: KEYS: lock, last tick. ARGV: owner, ttl ms, tick ms.
_CRON_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local last = redis.call('GET', KEYS[2])
if last and tonumber(last) >= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'PX', 86400000)
return 1
"""
#: KEYS: lock. ARGV: owner.
_CRON_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisEvents:
    """:class:`~.base.Events` over the Redis channel ``channel``."""

    def __init__(self, backend: RedisBackend, channel: str) -> None:
        self.backend = backend
        self.channel = channel

    def publish(self, event: Any) -> None:
        self.backend.send(self.channel, event)

    def subscribe(self, handler: EventHandler) -> None:
        self.backend.handlers.setdefault(self.channel, []).append(handler)


class RedisCronLock:
    """:class:`~.base.CronLock`: ``P iii:cron:lock:<job>`` held (``SET … PX ttl``) while a tick
    runs, ``P iii:cron:last:<job>`` the last tick started by any engine; both set by one
    script, so each tick runs once and runs never overlap (unless one outlasts the ttl)."""

    def __init__(self, backend: RedisBackend, ttl_ms: int) -> None:
        self.backend = backend
        self.ttl_ms = ttl_ms
        client = backend.client
        self._acquire = client.register_script(_CRON_ACQUIRE)
        self._release = client.register_script(_CRON_RELEASE)

    def _keys(self, job: str) -> list[str]:
        p = self.backend.prefix
        return [f"{p}iii:cron:lock:{job}", f"{p}iii:cron:last:{job}"]

    async def acquire(self, job: str, tick_ms: int) -> bool:
        args: list[Any] = [self.backend.engine_id, self.ttl_ms, tick_ms]
        return bool(await self._acquire(self._keys(job), args))

    async def release(self, job: str) -> None:
        await self._release(self._keys(job)[:1], [self.backend.engine_id])


class RedisBackend:
    """The ``redis`` adapter of one engine for one ``(url, prefix)`` (see the module)."""

    name = "redis"

    def __init__(self, url: str, prefix: str = "", *, lease_ms: int = 30_000) -> None:
        self.url = url
        self.prefix = prefix
        self.engine_id = uuid.uuid4().hex
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
            socket_connect_timeout=5,
            socket_timeout=30,
        )
        self.client = redis.Redis.from_pool(pool)  # closing the client closes the pool
        self.store = RedisStorage(self.client, prefix, self.engine_id, lease_ms)
        self.storage: Storage = self.store
        self.handlers: dict[str, list[EventHandler]] = {}
        self._engines_channel = f"{prefix}iii:events:engines"
        #: subscribers per channel, this engine included (absent: unknown, so publish)
        self._listeners: dict[str, int] = {}
        self._starts = 0  # engines seen starting (a count begun before one is stale)
        self._origin = self.engine_id.encode()
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._outbox_ready = asyncio.Event()
        self._dropped = 0
        self._queues: RedisQueues | None = None
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    # -- what the built-ins get ----------------------------------------------------------------

    def events(self, channel: str) -> Events:
        return RedisEvents(self, f"{self.prefix}iii:events:{channel}")

    def cron_lock(self, ttl_ms: int) -> CronLock:
        return RedisCronLock(self, ttl_ms)

    def queue_cluster(self) -> QueueCluster:
        if self._queues is None:
            self._queues = RedisQueues(self)
        return self._queues

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, subscribe to the channels the built-ins listen to (confirmed before this
        returns), start publishing. Raises :class:`StorageError` when Redis is unreachable."""
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise StorageError(f"cannot connect to Redis at {self.url}: {exc}") from None
        await self.storage.open()
        loop = asyncio.get_running_loop()
        self.handlers.setdefault(self._engines_channel, []).append(self._engine_started)
        self._pubsub = self.client.pubsub()
        await self._subscribe()
        self._tasks.append(loop.create_task(self._listen()))
        self._tasks.append(loop.create_task(self._publish_forever()))
        self._tasks.append(loop.create_task(self._count_listeners()))
        try:  # the others publish to us from now on
            await self.client.publish(self._engines_channel, self._origin + b' "started"')
        except (RedisError, OSError) as exc:
            raise StorageError(f"Redis at {self.url}: {exc}") from None
        if self._queues is not None:
            await self._queues.start()

    async def _subscribe(self) -> None:
        pubsub = self._pubsub
        await pubsub.subscribe(*self.handlers)
        confirmed = 0
        while confirmed < len(self.handlers):
            message = await pubsub.get_message(timeout=5.0)
            if message is None:
                raise StorageError(f"Redis at {self.url} did not confirm the subscription")
            if message["type"] == "subscribe":
                confirmed += 1

    async def close(self) -> None:
        """Publish what is waiting (up to 2 s), stop listening, close every connection."""
        if self._queues is not None:
            await self._queues.stop()
        if self._outbox:
            self._outbox_ready.set()
            for _ in range(200):
                if not self._outbox:
                    break
                await asyncio.sleep(0.01)
        self._closing = True  # loops also stop on this, should a cancel be swallowed
        await stop_tasks(self._tasks)
        self._tasks = []
        await self.storage.close()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        with contextlib.suppress(Exception):
            await self.client.aclose()

    # -- events --------------------------------------------------------------------------------

    def send(self, channel: str, event: Any) -> None:
        """Queue ``event`` for the other engines (skipped when none listens; dropped, with a
        warning, when the outbox is full: Redis unreachable or too slow)."""
        if self._listeners.get(channel, 2) <= 1:
            return
        if len(self._outbox) >= OUTBOX:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                logger.warning(
                    "redis: event outbox full (%d waiting): %d event(s) dropped",
                    OUTBOX,
                    self._dropped,
                )
            return
        self._outbox.append((channel, self._origin + b" " + encode(event)))
        self._outbox_ready.set()

    async def _publish_forever(self) -> None:
        outbox = self._outbox
        while not self._closing:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while outbox:
                batch = [outbox.popleft() for _ in range(min(len(outbox), 256))]
                try:
                    async with self.client.pipeline(transaction=False) as pipe:
                        for channel, data in batch:
                            pipe.publish(channel, data)
                        await pipe.execute()
                except (RedisError, OSError) as exc:
                    logger.warning("redis: %d event(s) not published: %s", len(batch), exc)
                    await asyncio.sleep(0.5)

    def _engine_started(self, event: Any) -> None:
        """Another engine subscribed: publish everything until the next count."""
        self._starts += 1
        self._listeners.clear()

    async def _count_listeners(self) -> None:
        channels = [c for c in self.handlers if c != self._engines_channel]
        while channels and not self._closing:
            starts = self._starts
            try:
                counts = await self.client.pubsub_numsub(*channels)
                if starts == self._starts:
                    self._listeners.update((_text(c), int(n)) for c, n in counts)
            except (RedisError, OSError) as exc:
                self._listeners.clear()
                logger.warning("redis: counting event subscribers failed: %s", exc)
            await asyncio.sleep(LISTENERS_S)

    async def _listen(self) -> None:
        pubsub = self._pubsub
        while not self._closing:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError) as exc:
                logger.warning("redis: event subscription failed (%s); reconnecting", exc)
                await asyncio.sleep(0.5)
                continue
            if message is not None and message.get("type") == "message":
                self._dispatch(message["channel"], message["data"])

    def _dispatch(self, channel: bytes | str, data: bytes) -> None:
        origin, _, body = data.partition(b" ")
        if origin == self._origin:
            return  # our own event, delivered locally already
        name = _text(channel)
        try:
            event = decode(body)
        except ValueError:
            logger.warning("redis: unreadable event on %s ignored", name)
            return
        for handler in self.handlers.get(name, ()):
            try:
                handler(event)
            except Exception:
                logger.exception("redis: handler of %s failed", name)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
