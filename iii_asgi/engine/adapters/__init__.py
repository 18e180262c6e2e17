"""Adapters: where each built-in keeps its data and how it meets other engines.

Two adapters of the same shape (:class:`~.base.Backend`), chosen by name per built-in
(``EngineConfig.state_adapter``, ``stream_adapter``, ``queue_adapter``, ``pubsub_adapter``,
``cron_adapter``; the config file's ``adapter: {name, config}``):

* ``local`` (:mod:`.local`; also ``kv``, ``builtin``, ``memory``): this process: the engine's
  store (memory, or SQLite in ``data_dir``), no other engine;
* ``redis`` (:mod:`.redis`): Redis at ``redis_url``: data, events, cron ticks and queue
  consumers shared by every engine on it.

:class:`Backends` builds them for one engine (one ``local``, one ``redis`` per distinct
``(redis_url, key_prefix)``), opens them before the built-ins start and closes them last.
"""

from __future__ import annotations

from ..config.adapters import LOCAL_ADAPTERS, REDIS, AdapterConfig
from ..config.engine import EngineConfig
from .base import Backend, CronLock, Events, QueueCluster, SubscriberRef
from .local import NO_EVENTS, LocalBackend
from .redis import RedisBackend

__all__ = [
    "NO_EVENTS",
    "Backend",
    "Backends",
    "CronLock",
    "Events",
    "LocalBackend",
    "QueueCluster",
    "RedisBackend",
    "SubscriberRef",
]


class Backends:
    """The adapters of one engine, by built-in: ``state``, ``stream``, ``queue``, ``pubsub``,
    ``cron`` (each a :class:`~.base.Backend`; several built-ins may share one).

    Raises ``ValueError`` naming the option for an adapter name that is not provided.
    """

    def __init__(self, config: EngineConfig) -> None:
        self.local = LocalBackend(config.data_dir)
        self._redis: dict[tuple[str, str], RedisBackend] = {}
        self._lease_ms = config.queue_visibility_timeout_ms
        self.state = self._select(config.state_adapter, "state_adapter")
        self.stream = self._select(config.stream_adapter, "stream_adapter")
        self.queue = self._select(config.queue_adapter, "queue_adapter")
        self.pubsub = self._select(config.pubsub_adapter, "pubsub_adapter")
        self.cron = self._select(config.cron_adapter, "cron_adapter")
        self._opened: list[Backend] = []

    def _select(self, adapter: AdapterConfig, option: str) -> Backend:
        if adapter.name in LOCAL_ADAPTERS:
            return self.local
        if adapter.name == REDIS:
            key = (adapter.redis_url, adapter.key_prefix)
            backend = self._redis.get(key)
            if backend is None:
                backend = RedisBackend(*key, lease_ms=self._lease_ms)
                self._redis[key] = backend
            return backend
        names = ", ".join((*LOCAL_ADAPTERS, REDIS))
        raise ValueError(
            f"EngineConfig.{option}: adapter {adapter.name!r} is not provided ({names})"
        )

    def all(self) -> list[Backend]:
        """Every adapter instance, the local one first."""
        return [self.local, *self._redis.values()]

    async def open(self) -> None:
        """Open every adapter; on a failure, close those opened and raise."""
        for backend in self.all():
            try:
                await backend.open()
            except BaseException:
                await backend.close()  # what it opened before failing
                await self.close()
                raise
            self._opened.append(backend)

    async def close(self) -> None:
        """Close what was opened, in reverse order."""
        opened, self._opened = self._opened, []
        for backend in reversed(opened):
            await backend.close()
