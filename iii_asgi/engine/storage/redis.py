"""The Redis storage adapter: :class:`~iii_asgi.engine.storage.Storage` shared by every engine
on one Redis (docs/engine.md, "Adapters").

Keys (``P`` is the adapter's ``key_prefix``, empty by default):

* documents: hash ``P<space>:<collection>``, field = key, value = JSON, so state lives in
  ``state:<scope>`` and stream items in ``stream:<stream_name>:<group_id>``, the real engine's
  own keys (a name containing ``:`` can meet another's key there, as in the real engine);
  insertion order in the sorted set ``Piii:order:<space>:<collection>`` (fields the engine did
  not write come last); collections in ``Piii:groups:<space>`` (a collection stays listed after
  its last key is deleted, builtins.md §4.2), spaces in ``Piii:spaces``; ``Piii:seq`` counts.
* queue ``<q>``: ``Piii:queue:meta:<q>`` (id → attempts, due time, position, created, group),
  ``…:msg:<q>`` (id → payload), sorted sets ``…:ready:<q>`` (by position),
  ``…:delayed:<q>`` (by due time), ``…:leased:<q>`` (by lease deadline), ``…:owner:<q>``
  (id → the engine holding it), dead letters ``…:dead:<q>`` and ``…:deadorder:<q>``;
  ``Piii:queue:names``; ``Piii:queue:front`` (positions of retries, counting down).

Atomicity: every write is one Lua script (:mod:`.redis_scripts`); ``update`` reads, applies
``fn`` here, then writes only if the stored text is unchanged (compare-and-set, retried), so
update ops are atomic across engines without a lock.

Leases: a claimed message is leased to this engine for ``lease_ms`` (the queue's visibility
timeout) and renewed every third of it while held; when the engine dies its leases expire and
the next claim by any engine makes the messages due again (at-least-once). ``open()`` does not
touch other engines' leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from .base import MISSING, DeadLetter, QueueMessage, StorageError
from .memory import decode, encode
from .redis_scripts import (
    ACK,
    CLAIM,
    DEAD_LETTER,
    DELETE,
    DISCARD,
    PUT,
    REDRIVE,
    RELEASE,
    RETRY,
    WRITE,
)

__all__ = ["RedisStorage"]

logger = logging.getLogger("iii_asgi.engine.redis")

#: compare-and-set attempts of one ``update`` before it fails (UPDATE_ERROR)
UPDATE_ATTEMPTS = 100
_QUEUE_KINDS = ("meta", "msg", "ready", "delayed", "leased", "owner", "dead", "deadorder")


class _Io:
    """``with store._io:``: refuses calls on a closed store and turns Redis failures into
    :class:`StorageError`."""

    def __init__(self, store: RedisStorage) -> None:
        self.store = store

    def __enter__(self) -> None:
        if self.store.closed:
            raise StorageError("storage is closed")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, (RedisError, OSError)):
            raise StorageError(f"redis: {exc}") from None


class RedisStorage:
    """:class:`~iii_asgi.engine.storage.Storage` in Redis (see the module docstring).

    ``client`` is owned by the caller (the Redis adapter); ``engine_id`` names this engine's
    leases.
    """

    def __init__(
        self, client: redis.Redis, prefix: str, engine_id: str, lease_ms: int = 30_000
    ) -> None:
        self.client: Any = client  # redis-py types replies for both decode_responses modes
        self.prefix = prefix
        self.engine_id = engine_id
        self.lease_ms = max(100, lease_ms)
        self.closed = True
        self._io = _Io(self)
        self._leased: dict[str, set[str]] = {}
        self._renewer: asyncio.Task[None] | None = None
        script = client.register_script
        self._write, self._delete = script(WRITE), script(DELETE)
        self._put, self._claim, self._ack = script(PUT), script(CLAIM), script(ACK)
        self._retry, self._release = script(RETRY), script(RELEASE)
        self._dead_letter, self._redrive = script(DEAD_LETTER), script(REDRIVE)
        self._discard = script(DISCARD)

    async def open(self) -> None:
        self.closed = False
        if self._renewer is None:
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def close(self) -> None:
        self.closed = True
        task, self._renewer = self._renewer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- keys ----------------------------------------------------------------------------------

    def _doc_keys(self, space: str, collection: str) -> list[str]:
        p = self.prefix
        return [
            f"{p}{space}:{collection}",
            f"{p}iii:order:{space}:{collection}",
            f"{p}iii:groups:{space}",
            f"{p}iii:spaces",
            f"{p}iii:seq",
        ]

    def _queue_keys(self, queue: str) -> list[str]:
        return [f"{self.prefix}iii:queue:{kind}:{queue}" for kind in _QUEUE_KINDS]

    @property
    def _front_key(self) -> str:
        return f"{self.prefix}iii:queue:front"

    @property
    def _seq_key(self) -> str:
        return f"{self.prefix}iii:seq"

    # -- documents -----------------------------------------------------------------------------

    async def get(self, space: str, collection: str, key: str) -> Any:
        with self._io:
            raw = await self.client.hget(f"{self.prefix}{space}:{collection}", key)
        return MISSING if raw is None else decode(raw)

    async def set(self, space: str, collection: str, key: str, value: Any) -> Any:
        raw = encode(value)
        with self._io:
            reply = await self._write(
                self._doc_keys(space, collection), [key, raw, collection, space, "set", ""]
            )
        return decode(reply[1]) if len(reply) > 1 else MISSING

    async def update(
        self, space: str, collection: str, key: str, fn: Callable[[Any], Any]
    ) -> tuple[Any, Any]:
        keys = self._doc_keys(space, collection)
        for _ in range(UPDATE_ATTEMPTS):
            with self._io:
                stored = await self.client.hget(keys[0], key)
            old = MISSING if stored is None else decode(stored)
            new = fn(old)
            if new is MISSING:
                return old, new
            mode, expected = ("missing", b"") if stored is None else ("equal", stored)
            args = [key, encode(new), collection, space, mode, expected]
            with self._io:
                reply = await self._write(keys, args)
            if reply[0] == 1:
                return old, new
        raise StorageError(f"update of {space}/{collection}/{key}: too many concurrent writes")

    async def delete(self, space: str, collection: str, key: str) -> Any:
        with self._io:
            raw = await self._delete(self._doc_keys(space, collection)[:2], [key])
        return MISSING if raw is None else decode(raw)

    async def list_items(self, space: str, collection: str) -> list[tuple[str, Any]]:
        keys = self._doc_keys(space, collection)
        with self._io:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.zrange(keys[1], 0, -1)
                pipe.hgetall(keys[0])
                order, values = await pipe.execute()
        items: dict[str, Any] = {k.decode(): v for k, v in values.items()}
        out = [(key, decode(items.pop(key))) for key in map(bytes.decode, order) if key in items]
        out.extend((key, decode(items[key])) for key in sorted(items))
        return out

    async def list_collections(self, space: str) -> list[str]:
        with self._io:
            members = await self.client.smembers(f"{self.prefix}iii:groups:{space}")
        return sorted(m.decode() for m in members)

    async def list_spaces(self, prefix: str = "") -> list[str]:
        with self._io:
            members = await self.client.smembers(f"{self.prefix}iii:spaces")
        return sorted(s for s in (m.decode() for m in members) if s.startswith(prefix))

    # -- queue messages ------------------------------------------------------------------------

    async def queue_put(self, messages: Sequence[QueueMessage]) -> None:
        if not messages:
            return
        keys = [f"{self.prefix}iii:queue:names", self._seq_key]
        args: list[Any] = [len(messages)]
        for m in messages:
            queue_keys = self._queue_keys(m.queue)
            keys += [queue_keys[0], queue_keys[1], queue_keys[3], queue_keys[6]]
            meta: dict[str, Any] = {"a": m.attempts, "t": m.available_at_ms, "c": m.created_at_ms}
            if m.group is not None:
                meta["g"] = m.group
            args += [m.queue, m.id, encode(m.payload), encode(meta)]
        with self._io:
            reply = await self._put(keys, args)
        if reply[0] != 1:
            queue, message_id = reply[1].decode(), reply[2].decode()
            raise StorageError(f"message {message_id!r} is already in queue {queue!r}")

    async def queue_claim(
        self, queue: str, now_ms: int, limit: int, exclusive: bool = False
    ) -> list[QueueMessage]:
        deadline = now_ms + self.lease_ms
        args: list[Any] = [now_ms, limit, deadline, int(exclusive), self.engine_id]
        with self._io:
            reply = await self._claim(self._queue_keys(queue), args)
        claimed = [
            _message(queue, reply[i].decode(), reply[i + 1], reply[i + 2])
            for i in range(0, len(reply), 3)
        ]
        if claimed:
            self._leased.setdefault(queue, set()).update(m.id for m in claimed)
        return claimed

    def _settled(self, queue: str, message_ids: Sequence[str]) -> None:
        held = self._leased.get(queue)
        if held is not None:
            held.difference_update(message_ids)

    async def queue_ack(self, queue: str, message_id: str) -> bool:
        return await self.queue_ack_many(queue, [message_id]) == 1

    async def queue_ack_many(self, queue: str, message_ids: Sequence[str]) -> int:
        if not message_ids:
            return 0
        self._settled(queue, message_ids)
        with self._io:
            return int(await self._ack(self._queue_keys(queue), list(message_ids)))

    async def _move(self, queue: str, message_id: str, due: int, mode: str, count: bool) -> bool:
        self._settled(queue, [message_id])
        keys = [*self._queue_keys(queue), self._front_key, self._seq_key]
        args: list[Any] = [message_id, due, mode, int(count), self.engine_id]
        with self._io:
            return bool(await self._retry(keys, args))

    async def queue_nack(
        self, queue: str, message_id: str, available_at_ms: int, front: bool = True
    ) -> bool:
        return await self._move(
            queue, message_id, available_at_ms, "front" if front else "back", True
        )

    async def queue_defer(self, queue: str, message_id: str, skip_until_ms: int) -> bool:
        """Hand a claimed message over to the other engines: due again at once, keeping its
        attempts and position, but not claimed by this engine before ``skip_until_ms``. False
        if it is not stored."""
        return await self._give_back(queue, message_id, skip_until_ms)

    async def queue_release(self, queue: str, message_id: str) -> bool:
        return await self._give_back(queue, message_id, 0)

    async def _give_back(self, queue: str, message_id: str, skip_until_ms: int) -> bool:
        self._settled(queue, [message_id])
        args: list[Any] = [message_id, self.engine_id, skip_until_ms]
        with self._io:
            return bool(await self._release(self._queue_keys(queue), args))

    async def queue_dead_letter(
        self, queue: str, message_id: str, error: str, failed_at_ms: int, count: bool = True
    ) -> bool:
        self._settled(queue, [message_id])
        keys = [*self._queue_keys(queue), self._seq_key]
        args: list[Any] = [message_id, error, failed_at_ms, int(count), self.engine_id]
        with self._io:
            return bool(await self._dead_letter(keys, args))

    async def queue_pending(self, queue: str) -> list[QueueMessage]:
        keys = self._queue_keys(queue)
        with self._io:
            metas = await self.client.hgetall(keys[0])
            ids = list(metas)
            payloads = await self.client.hmget(keys[1], ids) if ids else []
        messages = [
            _message(queue, message_id.decode(), metas[message_id], payload)
            for message_id, payload in zip(ids, payloads, strict=True)
            if payload is not None
        ]
        return sorted(messages, key=lambda m: m.seq)

    async def queue_names(self) -> list[str]:
        with self._io:
            names = sorted(m.decode() for m in await self.client.smembers(self._names_key))
            async with self.client.pipeline(transaction=False) as pipe:
                for name in names:
                    keys = self._queue_keys(name)
                    pipe.hlen(keys[0])
                    pipe.hlen(keys[6])
                counts = await pipe.execute()
        return [n for i, n in enumerate(names) if counts[2 * i] or counts[2 * i + 1]]

    @property
    def _names_key(self) -> str:
        return f"{self.prefix}iii:queue:names"

    async def queue_depth(self, queue: str) -> int:
        with self._io:
            return int(await self.client.hlen(self._queue_keys(queue)[0]))

    async def dead_letters(self, queue: str, offset: int = 0, limit: int = 50) -> list[DeadLetter]:
        if limit <= 0:
            return []
        keys = self._queue_keys(queue)
        with self._io:
            ids = await self.client.zrange(keys[7], offset, offset + limit - 1)
            if not ids:
                return []
            records = await self.client.hmget(keys[6], ids)
            payloads = await self.client.hmget(keys[1], ids)
        letters = []
        for message_id, record, payload in zip(ids, records, payloads, strict=True):
            if record is None:
                continue
            dead = decode(record)
            message = _message(queue, message_id.decode(), dead["m"], payload)
            letters.append(DeadLetter(message, dead["e"], int(dead["f"])))
        return letters

    async def dead_letter_count(self, queue: str) -> int:
        with self._io:
            return int(await self.client.hlen(self._queue_keys(queue)[6]))

    async def redrive(
        self, queue: str, message_ids: Sequence[str] | None, now_ms: int
    ) -> list[str]:
        if message_ids is not None and not message_ids:
            return []
        keys = [*self._queue_keys(queue), self._seq_key]
        with self._io:
            moved = await self._redrive(keys, [now_ms, *(message_ids or ())])
        return [m.decode() for m in moved]

    async def discard_dead_letter(self, queue: str, message_id: str) -> bool:
        with self._io:
            return bool(await self._discard(self._queue_keys(queue), [message_id]))

    # -- leases --------------------------------------------------------------------------------

    async def _renew_forever(self) -> None:
        """Push the deadline of every lease this engine holds, every third of ``lease_ms``."""
        period = self.lease_ms / 3000
        while not self.closed:
            await asyncio.sleep(period)
            held = {q: list(ids) for q, ids in self._leased.items() if ids}
            if not held:
                continue
            deadline = int(time.time() * 1000) + self.lease_ms
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for queue, ids in held.items():
                        pipe.zadd(self._queue_keys(queue)[4], dict.fromkeys(ids, deadline), xx=True)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                logger.warning("redis: renewing queue leases failed: %s", exc)


def _message(queue: str, message_id: str, meta: Any, payload: bytes | None) -> QueueMessage:
    m = meta if isinstance(meta, dict) else decode(meta)
    return QueueMessage(
        queue,
        message_id,
        None if payload is None else decode(payload),
        attempts=int(m["a"]),
        available_at_ms=int(m["t"]),
        group=m.get("g"),
        created_at_ms=int(m["c"]),
        seq=int(m["s"]),
    )
