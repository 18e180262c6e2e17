"""Queue settings (builtins.md §7.2, §7.3): named queues and durable-subscriber queues.

Named queues come from :attr:`EngineConfig.queues` (or the engine config file's
``queue_configs`` block, §13) and use the engine's snake_case keys; ``max_retries`` there is
the number of **total attempts**. A ``durable:subscriber`` trigger's ``queue_config`` uses
camelCase keys and ``maxRetries`` counts **retries** (attempts = maxRetries + 1, §15 item 14).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_QUEUE", "QueueConfig", "queue_configs_from_mapping"]

DEFAULT_QUEUE = "default"
_TYPES = ("standard", "fifo")
_KEYS = frozenset(
    {
        "max_retries",
        "concurrency",
        "type",
        "message_group_field",
        "backoff_ms",
        "poll_interval_ms",
        "max_depth",  # iii-asgi extension (issue 13)
        "max_priority",  # RabbitMQ only: accepted, ignored (§7.2)
        "priority_field",
    }
)


@dataclass(frozen=True)
class QueueConfig:
    """One queue's delivery policy (builtins.md §7.2; defaults are the engine's).

    Example::

        EngineConfig(queues={"emails": QueueConfig(max_retries=5, backoff_ms=200)})

    Arguments:
        max_retries: total delivery attempts before the message goes to the dead-letter queue
            (3 means three tries). Must be ≥ 1.
        concurrency: deliveries running at once; must be ≥ 1. ``fifo`` forces 1.
        type: ``"standard"`` or ``"fifo"``.
        message_group_field: required for ``fifo``: the key of the message ``data`` that must be
            present and non-null at enqueue time (validated only, as in the engine).
        backoff_ms: retry delay base, in milliseconds: ``backoff_ms × 2^(attempt−1)``.
        poll_interval_ms: in process the consumers are event-driven and never poll; with the
            Redis queue adapter, how often they also look for what other engines left due
            (delayed retries, expired leases); the smallest of the named queues' counts.
        max_depth: most messages the queue holds (waiting, in delivery or in backoff; dead
            letters not counted); an enqueue beyond it fails with ``enqueue_error``
            ``queue_full: Queue '<name>' is full (<n> messages, max_depth <n>)``. ``None``: no
            limit. An iii-asgi extension (the real engine has none); in memory a small message
            takes about 2 KB, so the default bounds a queue to about 200 MB.

    Raises ``ValueError`` on an invalid value (checked at construction; the fifo group field
    when the engine starts, :meth:`check_named`).
    """

    max_retries: int = 3
    concurrency: int = 10
    type: str = "standard"
    message_group_field: str | None = None
    backoff_ms: int = 1000
    poll_interval_ms: int = 100
    max_depth: int | None = 100_000

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"queue type must be 'standard' or 'fifo', not {self.type!r}")
        if self.concurrency < 1:
            raise ValueError("queue concurrency must be >= 1")
        if self.max_retries < 1:
            raise ValueError("queue max_retries (total attempts) must be >= 1")
        if self.backoff_ms < 0:
            raise ValueError("queue backoff_ms must be >= 0")
        if self.max_depth is not None and self.max_depth < 1:
            raise ValueError("queue max_depth must be >= 1 (or null: no limit)")

    def check_named(self, name: str) -> None:
        """A named ``fifo`` queue needs ``message_group_field`` (§7.2); raises ``ValueError``."""
        if self.fifo and not self.message_group_field:
            raise ValueError(f"queue {name!r}: a fifo queue requires message_group_field")

    @property
    def fifo(self) -> bool:
        return self.type == "fifo"

    @property
    def limit(self) -> int:
        """Deliveries at once: ``concurrency``, or 1 for ``fifo`` (prefetch 1)."""
        return 1 if self.fifo else self.concurrency

    @classmethod
    def from_mapping(cls, name: str, raw: Any) -> QueueConfig:
        """Parse one ``queue_configs`` entry (snake_case keys; unknown keys are rejected).

        Raises ``ValueError`` naming the queue.
        """
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ValueError(f"queue {name!r}: config must be a mapping")
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise ValueError(f"queue {name!r}: unknown keys {', '.join(unknown)}")
        values = {k: v for k, v in raw.items() if k not in ("max_priority", "priority_field")}
        for key in ("max_retries", "concurrency", "backoff_ms", "poll_interval_ms", "max_depth"):
            value = values.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"queue {name!r}: {key} must be an integer")
        try:
            config = cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"queue {name!r}: {exc}") from None
        config.check_named(name)
        return config

    @classmethod
    def from_subscriber(cls, raw: Any) -> QueueConfig:
        """A ``durable:subscriber`` trigger's camelCase ``queue_config`` (builtins.md §7.3):
        ``type`` (``fifo``, else concurrent), ``maxRetries`` (retries: attempts = n + 1),
        ``concurrency``, ``backoffDelayMs``, and ``maxDepth`` (iii-asgi: see ``max_depth``).
        Other keys are ignored. Defaults: 3 attempts, 1000 ms, concurrency 10, depth 100 000.
        Raises ``ValueError`` on bad values."""
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ValueError("queue_config must be an object")

        def number(key: str, default: int) -> int:
            value = raw.get(key)
            if value is None:
                return default
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"queue_config.{key} must be a non-negative integer")
            return value

        retries = raw.get("maxRetries")
        attempts = 3 if retries is None else number("maxRetries", 2) + 1
        fifo = raw.get("type") == "fifo"
        return cls(
            max_retries=attempts,
            concurrency=max(1, number("concurrency", 10)),
            type="fifo" if fifo else "standard",
            backoff_ms=number("backoffDelayMs", 1000),
            max_depth=max(1, number("maxDepth", 1)) if "maxDepth" in raw else cls.max_depth,
        )


def queue_configs_from_mapping(raw: Any) -> dict[str, QueueConfig]:
    """Parse a ``queue_configs: {name: {...}}`` block (engine config file, §7.2).

    Raises ``ValueError`` on a bad block or entry.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError("queue_configs must be a mapping of queue name to config")
    return {str(name): QueueConfig.from_mapping(str(name), value) for name, value in raw.items()}
