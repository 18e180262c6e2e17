"""Engine storage: one interface (:class:`Storage`), two adapters.

* :class:`MemoryStorage` (the default): process memory; nothing survives a restart.
* :class:`SqliteStorage`: ``<data_dir>/iii.sqlite3``, selected by ``EngineConfig.data_dir``,
  ``iii-asgi engine --data-dir PATH`` or ``storage: {data_dir: PATH}`` in the engine config file.

:func:`create_storage` picks the adapter; :class:`~iii_asgi.engine.Engine` opens it on ``start()``
and closes it after the core's ``shutdown()`` (``engine.workers.storage``).

Documents
---------
JSON values addressed by ``(space, collection, key)``. The built-ins use:

* state (builtins.md §4): space ``state``, collection = scope, key = key;
* streams (§6): space ``stream:<stream_name>``, collection = group id, key = item id.

``get``/``set``/``delete`` return the previous value or :data:`MISSING` (distinct from a stored
``null``); ``update(space, collection, key, fn)`` is an atomic read-modify-write, which is what
``state::update``/``stream::update`` need: no other write to the store interleaves with it.
``list_items`` keeps insertion order (an overwrite keeps its position); a collection stays listed
after its last key is deleted (§4.2).

Queue messages (for the queue, durable pub/sub and dead letters, §7)
--------------------------------------------------------------------
A :class:`QueueMessage` is ``(queue, id, payload, attempts, available_at_ms, group,
created_at_ms, seq)``. Its life::

    queue_put([msg])           # stored (SQLite: committed) before it returns: only then answer
                               # {"messageReceiptId"} to the caller
    queue_claim(q, now, n)     # lease up to n due messages, ascending seq
    queue_ack(q, id)           # handler succeeded: delete
    queue_ack_many(q, ids)     # several of them in one transaction (batched acks)
    queue_nack(q, id, at)      # handler failed: attempts += 1, due again at `at`; front=True
                               # puts it ahead of waiting messages (§7.2 "runs next")
    queue_dead_letter(q, id, error, now)   # attempts exhausted: attempts += 1, to the DLQ
    dead_letters(q) / dead_letter_count(q) / redrive(q, ids|None, now) / discard_dead_letter

**At-least-once across crashes.** A message is deleted only by ``queue_ack`` or moved by
``queue_dead_letter``. Claims are leases held by the running process: when a process dies with
claims outstanding (SIGKILL), the next ``open()`` of the same data directory makes those messages
due again, so they are delivered again (possibly a second time). A consumer therefore should:
``open`` → loop ``queue_claim`` (poll, e.g. every ``poll_interval_ms``, or right after a put) →
run → ``ack``/``nack``/``dead_letter``; on a clean stop, ``queue_release`` what it holds.
``queue_pending(q)`` lists every stored message of a queue (claimed or not), e.g. for stats.

Queue names are whatever the queue layer chooses (``default``, ``<topic>::<fn>@<ns>``...); the
store has no queue configuration. Queue configuration lives in the engine config file under
``queues:`` (see :mod:`iii_asgi.engine.config.file`), owned by the queue layer.

Durability of the SQLite adapter: WAL journal, ``synchronous=NORMAL``, one transaction per call,
committed before the coroutine returns, all on one dedicated thread (the event loop never waits on
disk). A process kill loses nothing committed; an OS crash or power loss may lose the last
commits.

Errors: adapter failures raise :class:`StorageError`; built-ins map it to their per-function
codes (``SET_ERROR``, ``STREAM_GET_ERROR``...).
"""

from __future__ import annotations

import os

from .base import MISSING, DeadLetter, Missing, QueueMessage, Storage, StorageError
from .memory import MemoryStorage
from .sqlite import SqliteStorage

__all__ = [
    "MISSING",
    "DeadLetter",
    "MemoryStorage",
    "Missing",
    "QueueMessage",
    "SqliteStorage",
    "Storage",
    "StorageError",
    "create_storage",
]


def create_storage(data_dir: str | os.PathLike[str] | None) -> Storage:
    """:class:`SqliteStorage` in ``data_dir``, or :class:`MemoryStorage` when it is ``None``.
    The store is not opened yet (``await storage.open()``)."""
    if data_dir is None:
        return MemoryStorage()
    return SqliteStorage(data_dir)
