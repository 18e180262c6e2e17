"""The storage interface shared by the in-memory and SQLite adapters (see the package docs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "MISSING",
    "DeadLetter",
    "Missing",
    "QueueMessage",
    "Storage",
    "StorageError",
]


class Missing:
    """The type of :data:`MISSING`: "no document under this key" (a stored JSON ``null`` is
    ``None``, a different thing)."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: Returned for a key that holds no document.
MISSING = Missing()


class StorageError(Exception):
    """An adapter failure (I/O, a closed store, a value that is not JSON). Built-ins map it to
    their per-function error codes (e.g. ``SET_ERROR``, builtins.md §4.1)."""


@dataclass
class QueueMessage:
    """One queued message.

    Attributes:
        queue: queue name (the queue helper's internal name, e.g. ``default`` or
            ``<topic>::<function_id>@<namespace>``).
        id: message id, unique within the queue (e.g. the ``messageReceiptId``).
        payload: any JSON value (what the consumer needs: function id, namespace, data...).
        attempts: delivery attempts that have failed so far.
        available_at_ms: Unix time in ms before which the message is not due.
        group: optional FIFO message-group value.
        created_at_ms: Unix time in ms of the first put.
        seq: position in the queue; claims take due messages in ascending ``seq``. Assigned by
            the store on put (``0`` here means "assign one").
    """

    queue: str
    id: str
    payload: Any
    attempts: int = 0
    available_at_ms: int = 0
    group: str | None = None
    created_at_ms: int = 0
    seq: int = 0


@dataclass
class DeadLetter:
    """A message that exhausted its attempts (builtins.md §7.2 DLQ record).

    Attributes:
        message: the message as it was when it failed (``attempts`` counts every failure).
        error: why the last attempt failed.
        failed_at_ms: Unix time in ms of the move to the dead letters.
    """

    message: QueueMessage
    error: str
    failed_at_ms: int


@runtime_checkable
class Storage(Protocol):
    """What the built-ins need from a store. Every method is a coroutine; adapters do their I/O
    off the event loop. Values are JSON values (dict, list, str, int, float, bool, None); a
    value that is not JSON-serialisable raises :class:`StorageError`.

    **Documents** live in ``space`` → ``collection`` → ``key`` (state: space ``state``,
    collection = scope; streams: space ``stream:<name>``, collection = group id). Keys of a
    collection are kept in insertion order; overwriting keeps the position. A collection exists
    from its first write until the store is wiped, even when its last key is deleted
    (builtins.md §4.2).

    **Queue messages** stay stored from ``queue_put`` until ``queue_ack`` or
    ``queue_dead_letter``; a claimed message is leased to this process only: ``open()`` makes
    every message that was claimed when the previous process died due again (at-least-once).
    """

    async def open(self) -> None:
        """Open (create) the store. Idempotent."""

    async def close(self) -> None:
        """Flush and close. Idempotent; further calls raise :class:`StorageError`."""

    # -- documents -----------------------------------------------------------------------------

    async def get(self, space: str, collection: str, key: str) -> Any:
        """The stored value, or :data:`MISSING`."""

    async def set(self, space: str, collection: str, key: str, value: Any) -> Any:
        """Store ``value``; return the previous value or :data:`MISSING`."""

    async def update(
        self, space: str, collection: str, key: str, fn: Callable[[Any], Any]
    ) -> tuple[Any, Any]:
        """Atomically replace the value with ``fn(old)`` (``old`` may be :data:`MISSING`; ``fn``
        must not mutate it, since it is also returned, and must not block). Returns
        ``(old, new)``. If ``fn`` returns
        :data:`MISSING` nothing is written. Exceptions from ``fn`` propagate unchanged."""

    async def delete(self, space: str, collection: str, key: str) -> Any:
        """Remove the key; return the removed value or :data:`MISSING`."""

    async def list_items(self, space: str, collection: str) -> list[tuple[str, Any]]:
        """``(key, value)`` pairs of a collection in insertion order; ``[]`` if unknown."""

    async def list_collections(self, space: str) -> list[str]:
        """Names of the collections of ``space`` (sorted)."""

    async def list_spaces(self, prefix: str = "") -> list[str]:
        """Spaces whose name starts with ``prefix`` (sorted)."""

    # -- queue messages ------------------------------------------------------------------------

    async def queue_put(self, messages: Sequence[QueueMessage]) -> None:
        """Durably store new messages (in order; ``seq`` is assigned) before returning. A
        duplicate ``(queue, id)`` raises :class:`StorageError` and stores none of the batch."""

    async def queue_claim(
        self, queue: str, now_ms: int, limit: int, exclusive: bool = False
    ) -> list[QueueMessage]:
        """Lease up to ``limit`` due (``available_at_ms <= now_ms``), unclaimed messages of
        ``queue`` in ascending ``seq``; they stay stored until acked, nacked or dead-lettered.
        ``exclusive``: lease nothing while any message of ``queue`` is leased (a fifo queue
        consumed by several engines runs one message at a time)."""

    async def queue_ack(self, queue: str, message_id: str) -> bool:
        """Delete a message (delivered). False if it was not stored."""

    async def queue_ack_many(self, queue: str, message_ids: Sequence[str]) -> int:
        """Delete several delivered messages in one transaction; returns how many were
        stored."""

    async def queue_nack(
        self, queue: str, message_id: str, available_at_ms: int, front: bool = True
    ) -> bool:
        """Release a claimed message for a retry: ``attempts += 1``, not due before
        ``available_at_ms``; ``front`` moves it ahead of every waiting message (builtins.md
        §7.2: a retried job runs next once due). False if it was not stored."""

    async def queue_release(self, queue: str, message_id: str) -> bool:
        """Release a claim without counting an attempt (e.g. the consumer is stopping)."""

    async def queue_dead_letter(
        self, queue: str, message_id: str, error: str, failed_at_ms: int, count: bool = True
    ) -> bool:
        """Move a message to the queue's dead letters (``count``: add this failure to
        ``attempts``). False if it was not stored."""

    async def queue_pending(self, queue: str) -> list[QueueMessage]:
        """Every stored, not dead-lettered message of ``queue`` (claimed or not), by ``seq``."""

    async def queue_names(self) -> list[str]:
        """Queues with stored messages or dead letters (sorted)."""

    async def queue_depth(self, queue: str) -> int:
        """Stored, not dead-lettered messages of ``queue``."""

    async def dead_letters(self, queue: str, offset: int = 0, limit: int = 50) -> list[DeadLetter]:
        """Dead letters of ``queue``, oldest first."""

    async def dead_letter_count(self, queue: str) -> int:
        """How many dead letters ``queue`` has."""

    async def redrive(
        self, queue: str, message_ids: Sequence[str] | None, now_ms: int
    ) -> list[str]:
        """Move dead letters back to the queue (all of them when ``message_ids`` is None), due
        at ``now_ms`` with ``attempts = 0``, at the back; returns the ids moved."""

    async def discard_dead_letter(self, queue: str, message_id: str) -> bool:
        """Delete one dead letter. False if there was none."""
