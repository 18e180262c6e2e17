"""Bounds of the HTTP trigger port's connections (issue 13): head size and timing, and a cap on
open connections per listener that evicts the connections waiting on their clients first.

The numbers come from :class:`~iii_asgi.engine.config.engine.EngineConfig` (``http_max_*``,
``http_*_timeout_ms``); :class:`~iii_asgi.engine.workers.http.protocol.HttpProtocol` enforces
them; docs/engine.md ("Limits") lists what a client sees when one is hit.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from ...config.engine import EngineConfig

__all__ = ["Connections", "HttpLimits", "default_max_connections"]

#: Bounds of the derived connection cap (``http_max_connections=None``).
MIN_CONNECTIONS = 16
MAX_CONNECTIONS = 4096


def default_max_connections() -> int:
    """Half the soft ``RLIMIT_NOFILE`` (the other half stays for worker sockets, the stream
    socket, files), within [16, 4096]: with 1,024 descriptors, 512 HTTP connections."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return MAX_CONNECTIONS
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, soft // 2))


@dataclass(frozen=True)
class HttpLimits:
    """Per-connection bounds of the HTTP port (sizes in bytes, timeouts in seconds)."""

    max_header_bytes: int = 64 * 1024
    max_request_line_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    @classmethod
    def from_config(cls, config: EngineConfig) -> HttpLimits:
        return cls(
            max_header_bytes=config.http_max_header_bytes,
            max_request_line_bytes=config.http_max_request_line_bytes,
            max_headers=config.http_max_headers,
            header_timeout_s=config.http_header_timeout_ms / 1000,
            body_timeout_s=config.http_body_timeout_ms / 1000,
        )


class Connection(Protocol):
    """What :class:`Connections` needs of a connection (the HTTP protocol object)."""

    def idle(self) -> bool:
        """No request in progress (a new connection, or keep-alive between requests)."""

    def waiting_on_client(self) -> bool:
        """Idle, or still sending its request, or not reading its response."""

    def evict(self) -> None:
        """Close the connection (with 408 when a request was being received)."""


class Connections:
    """The open connections of one listener, least recently read first, with a cap.

    :meth:`add` admits a new connection; at the cap it first evicts the idle connection read
    least recently, else the connection waiting on its client (still sending its request, or
    not reading its response) read least recently; when every connection is busy with the
    engine the new one is refused (the caller answers 503). :meth:`touch` on every read keeps
    the order: a connection that makes progress is never the first to go.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.open: OrderedDict[Connection, None] = OrderedDict()
        #: Connections evicted and refused since start (for tests and benchmarks).
        self.evicted = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self.open)

    def add(self, conn: Connection) -> bool:
        """Admit ``conn``; False when the listener is full of busy connections."""
        if len(self.open) >= self.limit:
            victim = self._victim()
            if victim is None:
                self.refused += 1
                return False
            self.evicted += 1
            del self.open[victim]
            victim.evict()
        self.open[conn] = None
        return True

    def touch(self, conn: Connection) -> None:
        """``conn`` was just read from: it goes to the back of the eviction order."""
        if conn in self.open:
            self.open.move_to_end(conn)

    def discard(self, conn: Connection) -> None:
        self.open.pop(conn, None)

    def _victim(self) -> Connection | None:
        for conn in self.open:
            if conn.idle():
                return conn
        for conn in self.open:
            if conn.waiting_on_client():
                return conn
        return None
