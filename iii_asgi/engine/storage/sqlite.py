"""The file-backed storage adapter: one SQLite database (stdlib ``sqlite3``) in WAL mode, used
from one dedicated thread so the event loop never blocks on disk."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .base import MISSING, DeadLetter, QueueMessage, StorageError
from .memory import decode, encode

__all__ = ["SqliteStorage"]

T = TypeVar("T")

#: File name of the database inside the data directory.
DB_NAME = "iii.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    space TEXT NOT NULL, collection TEXT NOT NULL, key TEXT NOT NULL,
    value BLOB NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (space, collection, key)
);
CREATE INDEX IF NOT EXISTS documents_order ON documents (space, collection, seq);
CREATE TABLE IF NOT EXISTS collections (
    space TEXT NOT NULL, collection TEXT NOT NULL, PRIMARY KEY (space, collection)
);
CREATE TABLE IF NOT EXISTS messages (
    queue TEXT NOT NULL, id TEXT NOT NULL, payload BLOB NOT NULL,
    attempts INTEGER NOT NULL, available_at INTEGER NOT NULL, grp TEXT,
    created_at INTEGER NOT NULL, seq INTEGER NOT NULL, claimed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, id)
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (queue, claimed, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL, id TEXT NOT NULL, payload BLOB NOT NULL,
    attempts INTEGER NOT NULL, available_at INTEGER NOT NULL, grp TEXT,
    created_at INTEGER NOT NULL, seq INTEGER NOT NULL,
    error TEXT NOT NULL, failed_at INTEGER NOT NULL,
    UNIQUE (queue, id)
);
"""

_MESSAGE_COLUMNS = "queue, id, payload, attempts, available_at, grp, created_at, seq"


def _message(row: Sequence[Any]) -> QueueMessage:
    return QueueMessage(
        queue=row[0],
        id=row[1],
        payload=decode(row[2]),
        attempts=row[3],
        available_at_ms=row[4],
        group=row[5],
        created_at_ms=row[6],
        seq=row[7],
    )


class SqliteStorage:
    """:class:`~iii_asgi.engine.storage.Storage` in ``<data_dir>/iii.sqlite3``.

    Every write is one transaction committed before the coroutine returns (WAL,
    ``synchronous=NORMAL``: a committed write survives the process being killed; only an OS
    crash or power loss can lose the last commits). The directory is created if needed.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / DB_NAME
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._seq = 0
        self._front = 0

    # -- plumbing ------------------------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        executor = self._executor
        if executor is None:
            raise StorageError("storage is closed")

        def call() -> T:
            db = self._db
            if db is None:
                raise StorageError("storage is closed")
            try:
                return fn(db)
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.rollback()
                raise StorageError(f"sqlite: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(executor, call)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def transaction(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                db.rollback()
                raise
            db.commit()
            return result

        return await self._run(transaction)

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="iii-sqlite")

        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute("UPDATE messages SET claimed = 0 WHERE claimed = 1")  # leases expire
            row = db.execute(
                "SELECT MAX(m), MIN(n) FROM (SELECT MAX(seq) m, MIN(seq) n FROM messages "
                "UNION ALL SELECT MAX(seq), MIN(seq) FROM documents "
                "UNION ALL SELECT MAX(seq), MIN(seq) FROM dead_letters)"
            ).fetchone()
            self._seq = max(row[0] or 0, 0)
            self._front = min(row[1] or 0, 0)
            self._db = db

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except (OSError, sqlite3.Error) as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise StorageError(f"cannot open {self.path}: {exc}") from exc

    async def close(self) -> None:
        executor = self._executor
        if executor is None:
            return

        def disconnect() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        try:
            await asyncio.get_running_loop().run_in_executor(executor, disconnect)
        finally:
            self._executor = None
            executor.shutdown(wait=True)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- documents -----------------------------------------------------------------------------

    @staticmethod
    def _get(db: sqlite3.Connection, space: str, collection: str, key: str) -> Any:
        row = db.execute(
            "SELECT value FROM documents WHERE space = ? AND collection = ? AND key = ?",
            (space, collection, key),
        ).fetchone()
        return MISSING if row is None else decode(row[0])

    def _put(
        self, db: sqlite3.Connection, space: str, collection: str, key: str, raw: bytes
    ) -> None:
        db.execute(
            "INSERT INTO documents (space, collection, key, value, seq) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (space, collection, key) DO UPDATE SET value = excluded.value",
            (space, collection, key, raw, self._next_seq()),
        )
        db.execute(
            "INSERT OR IGNORE INTO collections (space, collection) VALUES (?, ?)",
            (space, collection),
        )

    async def get(self, space: str, collection: str, key: str) -> Any:
        return await self._run(lambda db: self._get(db, space, collection, key))

    async def set(self, space: str, collection: str, key: str, value: Any) -> Any:
        raw = encode(value)

        def write(db: sqlite3.Connection) -> Any:
            old = self._get(db, space, collection, key)
            self._put(db, space, collection, key, raw)
            return old

        return await self._write(write)

    async def update(
        self, space: str, collection: str, key: str, fn: Callable[[Any], Any]
    ) -> tuple[Any, Any]:
        def write(db: sqlite3.Connection) -> tuple[Any, Any]:
            old = self._get(db, space, collection, key)
            new = fn(old)
            if new is not MISSING:
                self._put(db, space, collection, key, encode(new))
            return old, new

        return await self._write(write)

    async def delete(self, space: str, collection: str, key: str) -> Any:
        def write(db: sqlite3.Connection) -> Any:
            old = self._get(db, space, collection, key)
            if old is not MISSING:
                db.execute(
                    "DELETE FROM documents WHERE space = ? AND collection = ? AND key = ?",
                    (space, collection, key),
                )
            return old

        return await self._write(write)

    async def list_items(self, space: str, collection: str) -> list[tuple[str, Any]]:
        def read(db: sqlite3.Connection) -> list[tuple[str, Any]]:
            rows = db.execute(
                "SELECT key, value FROM documents WHERE space = ? AND collection = ? ORDER BY seq",
                (space, collection),
            ).fetchall()
            return [(key, decode(raw)) for key, raw in rows]

        return await self._run(read)

    async def list_collections(self, space: str) -> list[str]:
        def read(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT collection FROM collections WHERE space = ? ORDER BY collection",
                (space,),
            ).fetchall()
            return [row[0] for row in rows]

        return await self._run(read)

    async def list_spaces(self, prefix: str = "") -> list[str]:
        def read(db: sqlite3.Connection) -> list[str]:
            rows = db.execute("SELECT DISTINCT space FROM collections ORDER BY space").fetchall()
            return [row[0] for row in rows if row[0].startswith(prefix)]

        return await self._run(read)

    # -- queue messages ------------------------------------------------------------------------

    async def queue_put(self, messages: Sequence[QueueMessage]) -> None:
        encoded = [encode(m.payload) for m in messages]

        def write(db: sqlite3.Connection) -> None:
            for m, raw in zip(messages, encoded, strict=True):
                if db.execute(
                    "SELECT 1 FROM dead_letters WHERE queue = ? AND id = ?", (m.queue, m.id)
                ).fetchone():
                    raise StorageError(f"message {m.id!r} is already in queue {m.queue!r}")
                try:
                    db.execute(
                        f"INSERT INTO messages ({_MESSAGE_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            m.queue,
                            m.id,
                            raw,
                            m.attempts,
                            m.available_at_ms,
                            m.group,
                            m.created_at_ms,
                            self._next_seq(),
                        ),
                    )
                except sqlite3.IntegrityError:
                    raise StorageError(
                        f"message {m.id!r} is already in queue {m.queue!r}"
                    ) from None

        await self._write(write)

    async def queue_claim(
        self, queue: str, now_ms: int, limit: int, exclusive: bool = False
    ) -> list[QueueMessage]:
        def write(db: sqlite3.Connection) -> list[QueueMessage]:
            if (
                exclusive
                and db.execute(
                    "SELECT 1 FROM messages WHERE queue = ? AND claimed = 1 LIMIT 1", (queue,)
                ).fetchone()
            ):
                return []
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE queue = ? AND claimed = 0 "
                "AND available_at <= ? ORDER BY seq LIMIT ?",
                (queue, now_ms, limit),
            ).fetchall()
            db.executemany(
                "UPDATE messages SET claimed = 1 WHERE queue = ? AND id = ?",
                [(queue, row[1]) for row in rows],
            )
            return [_message(row) for row in rows]

        return await self._write(write)

    async def queue_ack(self, queue: str, message_id: str) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "DELETE FROM messages WHERE queue = ? AND id = ?", (queue, message_id)
            )
            return cursor.rowcount > 0

        return await self._write(write)

    async def queue_ack_many(self, queue: str, message_ids: Sequence[str]) -> int:
        ids = list(message_ids)

        def write(db: sqlite3.Connection) -> int:
            cursor = db.executemany(
                "DELETE FROM messages WHERE queue = ? AND id = ?", [(queue, i) for i in ids]
            )
            return cursor.rowcount

        return await self._write(write)

    async def queue_nack(
        self, queue: str, message_id: str, available_at_ms: int, front: bool = True
    ) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            if front:
                self._front -= 1
                seq = self._front
            else:
                seq = self._next_seq()
            cursor = db.execute(
                "UPDATE messages SET attempts = attempts + 1, available_at = ?, seq = ?, "
                "claimed = 0 WHERE queue = ? AND id = ?",
                (available_at_ms, seq, queue, message_id),
            )
            return cursor.rowcount > 0

        return await self._write(write)

    async def queue_release(self, queue: str, message_id: str) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE messages SET claimed = 0 WHERE queue = ? AND id = ?", (queue, message_id)
            )
            return cursor.rowcount > 0

        return await self._write(write)

    async def queue_dead_letter(
        self, queue: str, message_id: str, error: str, failed_at_ms: int, count: bool = True
    ) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                f"INSERT INTO dead_letters ({_MESSAGE_COLUMNS}, error, failed_at) "
                "SELECT queue, id, payload, attempts + ?, available_at, grp, created_at, seq, "
                "?, ? "
                "FROM messages WHERE queue = ? AND id = ?",
                (1 if count else 0, error, failed_at_ms, queue, message_id),
            )
            if cursor.rowcount == 0:
                return False
            db.execute("DELETE FROM messages WHERE queue = ? AND id = ?", (queue, message_id))
            return True

        return await self._write(write)

    async def queue_pending(self, queue: str) -> list[QueueMessage]:
        def read(db: sqlite3.Connection) -> list[QueueMessage]:
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE queue = ? ORDER BY seq", (queue,)
            ).fetchall()
            return [_message(row) for row in rows]

        return await self._run(read)

    async def queue_names(self) -> list[str]:
        def read(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT queue FROM messages UNION SELECT queue FROM dead_letters ORDER BY 1"
            ).fetchall()
            return [row[0] for row in rows]

        return await self._run(read)

    async def queue_depth(self, queue: str) -> int:
        def read(db: sqlite3.Connection) -> int:
            row = db.execute("SELECT COUNT(*) FROM messages WHERE queue = ?", (queue,)).fetchone()
            return int(row[0])

        return await self._run(read)

    async def dead_letters(self, queue: str, offset: int = 0, limit: int = 50) -> list[DeadLetter]:
        def read(db: sqlite3.Connection) -> list[DeadLetter]:
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS}, error, failed_at FROM dead_letters WHERE queue = ? "
                "ORDER BY n LIMIT ? OFFSET ?",
                (queue, limit, offset),
            ).fetchall()
            return [DeadLetter(_message(row), row[8], row[9]) for row in rows]

        return await self._run(read)

    async def dead_letter_count(self, queue: str) -> int:
        def read(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT COUNT(*) FROM dead_letters WHERE queue = ?", (queue,)
            ).fetchone()
            return int(row[0])

        return await self._run(read)

    async def redrive(
        self, queue: str, message_ids: Sequence[str] | None, now_ms: int
    ) -> list[str]:
        def write(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM dead_letters WHERE queue = ? ORDER BY n",
                (queue,),
            ).fetchall()
            wanted = None if message_ids is None else set(message_ids)
            moved: list[str] = []
            for row in rows:
                if wanted is not None and row[1] not in wanted:
                    continue
                db.execute(
                    f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES (?, ?, ?, 0, ?, ?, ?, ?)",
                    (row[0], row[1], row[2], now_ms, row[5], row[6], self._next_seq()),
                )
                db.execute("DELETE FROM dead_letters WHERE queue = ? AND id = ?", (queue, row[1]))
                moved.append(row[1])
            return moved

        return await self._write(write)

    async def discard_dead_letter(self, queue: str, message_id: str) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "DELETE FROM dead_letters WHERE queue = ? AND id = ?", (queue, message_id)
            )
            return cursor.rowcount > 0

        return await self._write(write)
