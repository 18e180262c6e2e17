"""Client options: :class:`InitOptions`, :class:`ReconnectionConfig`, :class:`TelemetryOptions`.

Defaults follow protocol.md Appendix A and sdk_surface.md §3.3–§3.4.
"""

from __future__ import annotations

import itertools
import os
import platform
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .protocol import DEFAULT_ENGINE_URL

__all__ = [
    "DEFAULT_INVOCATION_TIMEOUT_MS",
    "MAX_QUEUE_SIZE",
    "ConnectionStateCallback",
    "IIIConnectionState",
    "InitOptions",
    "ReconnectionConfig",
    "TelemetryOptions",
    "resolve_engine_url",
    "resolve_headers",
]

DEFAULT_INVOCATION_TIMEOUT_MS = 30_000
#: Frames kept while disconnected (oldest dropped first), protocol.md §1.4.
MAX_QUEUE_SIZE = 1000

_default_names = itertools.count(1)

IIIConnectionState = Literal["disconnected", "connecting", "connected", "reconnecting", "failed"]

#: ``callback(state)``, called on every connection state change (seed 001).
ConnectionStateCallback = Callable[[IIIConnectionState], Any]


@dataclass
class ReconnectionConfig:
    """Backoff between reconnect attempts (protocol.md §1.9).

    The delay before attempt ``n`` (from 0) is ``min(initial_delay_ms * backoff_multiplier**n,
    max_delay_ms)`` plus or minus ``jitter_factor`` of itself. ``max_retries=-1`` retries forever;
    when a finite limit is reached the connection state becomes ``"failed"``.
    """

    initial_delay_ms: int = 1000
    max_delay_ms: int = 30_000
    backoff_multiplier: float = 2.0
    jitter_factor: float = 0.3
    max_retries: int = -1

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (0-based)."""
        base = min(self.initial_delay_ms * self.backoff_multiplier**attempt, self.max_delay_ms)
        jitter = base * self.jitter_factor * (2 * random.random() - 1)
        return max(0.0, base + jitter) / 1000


@dataclass
class TelemetryOptions:
    """Telemetry labels sent in ``engine::workers::register`` (protocol.md §7.2.1)."""

    language: str | None = None
    project_name: str | None = None
    framework: str | None = None


@dataclass
class InitOptions:
    """Worker identity and connection options.

    - ``worker_name``: defaults to ``"<hostname>:<pid>"`` (``"<hostname>:<pid>:<n>"`` for the
      n-th client of one process, so two clients never claim the same name); env
      ``III_WORKER_NAME`` wins.
    - ``namespace``: the worker's namespace (§1.5); else env ``III_NAMESPACE``; blank raises
      ``ValueError``.
    - ``headers``: sent on every engine socket; env ``III_TOKEN`` adds ``Authorization: Bearer``
      unless an Authorization header is given.
    - ``invocation_timeout_ms``: default per-call timeout (30 000 ms).
    - ``max_handler_threads``: size of the thread pool that runs sync handlers.
    - ``max_concurrent_handlers``: handlers (async and sync) running at once, 1024 by default;
      more invocations wait as frames. The worker tells the engine it can hold twice this many;
      the iii-asgi engine answers calls beyond that with ``WORKER_BACKPRESSURE``. With an
      engine that sends more, the worker stops reading its socket once twice this many
      frames wait (the engine holds the rest). A
      handler waiting for a ``trigger()`` of its own does not count (its result comes on the
      same socket); past four times as many handlers running in all, a new invocation is
      answered at once with ``WORKER_BACKPRESSURE``.
    - ``transport``: ``"auto"`` (default), ``"memory"`` or ``"websocket"``; else env
      ``III_TRANSPORT``. ``auto`` connects in memory, without a socket, to an engine running in
      this process on the client's own event loop (``iii-asgi run``); ``memory`` also to one on
      another loop of this process; ``websocket`` never (docs/sdk.md, "In-process transport").
    """

    worker_name: str | None = None
    worker_description: str | None = None
    namespace: str | None = None
    enable_metrics_reporting: bool = True
    invocation_timeout_ms: int = DEFAULT_INVOCATION_TIMEOUT_MS
    reconnection_config: ReconnectionConfig | None = None
    otel: Any = None
    headers: dict[str, str] | None = None
    telemetry: TelemetryOptions | None = None
    max_handler_threads: int = 32
    max_concurrent_handlers: int = 1024
    transport: str | None = None

    def resolved_worker_name(self) -> str:
        env = os.environ.get("III_WORKER_NAME", "").strip()
        if env:
            return env
        if self.worker_name:
            return self.worker_name
        n = next(_default_names)
        suffix = f":{n}" if n > 1 else ""
        return f"{platform.node()}:{os.getpid()}{suffix}"

    def resolved_namespace(self) -> str | None:
        if self.namespace is not None:
            if not self.namespace.strip():
                raise ValueError("namespace is empty: pass a non-blank name or leave it unset")
            return self.namespace
        env = os.environ.get("III_NAMESPACE", "").strip()
        return env or None

    def resolved_headers(self) -> dict[str, str]:
        return resolve_headers(self.headers) or {}


def resolve_headers(explicit: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """Handshake headers of an engine socket: ``explicit`` plus ``Authorization: Bearer
    $III_TOKEN`` when that variable is set, not blank, and no Authorization header (any case)
    was given (sdk_surface.md §3.3). ``None`` when there are none."""
    headers = dict(explicit) if explicit is not None else None
    token = os.environ.get("III_TOKEN", "").strip()
    if token and not any(name.lower() == "authorization" for name in headers or {}):
        headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
    return headers


def resolve_engine_url(address: str | None = None) -> str:
    """The engine URL: ``address``, else env ``III_URL``, else ``ws://127.0.0.1:49134``."""
    return address or os.environ.get("III_URL") or DEFAULT_ENGINE_URL
