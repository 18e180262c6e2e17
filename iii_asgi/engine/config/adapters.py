"""Where a built-in keeps its data and meets other engines: :class:`AdapterConfig`.

Each of ``iii-state``, ``iii-stream``, ``iii-queue``, ``iii-pubsub`` and ``iii-cron`` picks its
adapter by name (``EngineConfig.state_adapter``, ``stream_adapter``, ``queue_adapter``,
``pubsub_adapter``, ``cron_adapter``), as the real engine's ``adapter: {name, config}`` block
does (builtins.md §4.4, §6.5, §7.6, §8, §9). The adapters themselves are in
:mod:`iii_asgi.engine.adapters`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LOCAL_ADAPTERS", "REDIS", "AdapterConfig"]

#: Names meaning "in this process" (memory, or the ``data_dir`` file store): the real engine's
#: ``kv`` (state, stream, cron), ``builtin`` (queue) and ``local`` (pubsub), and ``memory``.
LOCAL_ADAPTERS = ("local", "kv", "builtin", "memory")

#: The Redis adapter's name.
REDIS = "redis"


@dataclass
class AdapterConfig:
    """One built-in's adapter.

    Example::

        EngineConfig(
            stream_adapter=AdapterConfig("redis", redis_url="redis://127.0.0.1:6379/0"),
            pubsub_adapter=AdapterConfig("redis", redis_url="redis://127.0.0.1:6379/0"),
        )  # state, queue and cron stay in this process

    Arguments:
        name: ``"local"`` (default; also ``kv``, ``builtin``, ``memory``): in this process, in
            memory or in the ``data_dir`` store; ``"redis"``: shared by every engine on the
            same Redis (docs/engine.md, "Adapters"). Other names are refused when the engine
            is built (``ValueError`` naming the option).
        redis_url: the Redis server (``redis://[[user]:[password]@]host:port[/db]``,
            ``rediss://`` for TLS, ``unix://``).
        key_prefix: prepended to every Redis key and channel name, so several projects can
            share one Redis (``""`` by default: the real engine's key names, ``state:<scope>``).
    """

    name: str = "local"
    redis_url: str = "redis://localhost:6379"
    key_prefix: str = ""

    @property
    def is_redis(self) -> bool:
        return self.name == REDIS
