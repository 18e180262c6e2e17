"""``OtelConfig``: what :func:`init_otel` sets up (seed 003; sdk_surface.md §3.3, §3.9).

Every field left at ``None`` is read from its environment variable, then its default, when
:meth:`OtelConfig.resolved` runs (at :func:`init_otel` time).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["OtelConfig", "otel_enabled_from_env"]

DEFAULT_ENGINE_WS_URL = "ws://localhost:49134"
DEFAULT_SERVICE_NAME = "iii-python-sdk"
_FALSE = frozenset({"false", "0", "no", "off"})


def otel_enabled_from_env() -> bool:
    """``False`` when ``OTEL_ENABLED`` is ``false``/``0``/``no``/``off`` (any case), else ``True``
    (protocol.md §1.2)."""
    return os.environ.get("OTEL_ENABLED", "").strip().lower() not in _FALSE


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def _env_str(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


@dataclass
class OtelConfig:
    """Configuration for OpenTelemetry initialisation (seed 003).

    Example::

        init_otel(OtelConfig(service_name="orders", spans_flush_interval_ms=50))

    Fields (``None`` = environment variable, then default):

    - ``enabled``: default ``True``; env ``OTEL_ENABLED=false|0|no|off`` disables everything
      (no providers, no ``/otel`` socket).
    - ``engine_ws_url``: the engine the ``/otel`` socket dials (``<url>/otel``, protocol.md
      §1.11); env ``III_URL``, else ``ws://localhost:49134``. A worker passes its own address.
    - ``engine_ws_headers``: handshake headers of that socket (the worker's, with ``III_TOKEN``).
    - ``service_name``: env ``OTEL_SERVICE_NAME``, else ``"iii-python-sdk"``.
    - ``service_version``: env ``SERVICE_VERSION``, else ``"unknown"``.
    - ``service_namespace``: env ``SERVICE_NAMESPACE``; omitted when unset.
    - ``service_instance_id``: env ``SERVICE_INSTANCE_ID``, else a random UUID.
    - ``spans_flush_interval_ms``: batch span processor delay, ms; env
      ``OTEL_SPANS_FLUSH_INTERVAL_MS``, else 100 (the OpenTelemetry default of 5000 ms is what
      makes traces appear seconds late).
    - ``logs_enabled``: export :class:`Logger` records (default ``True``).
    - ``logs_flush_interval_ms``: env ``OTEL_LOGS_FLUSH_INTERVAL_MS``, else 100.
    - ``logs_batch_size``: log records per export; env ``OTEL_LOGS_BATCH_SIZE``, else 1.
    - ``metrics_enabled``: export metrics (default ``True``).
    - ``metrics_export_interval_ms``: default 60 000.
    - ``fetch_instrumentation_enabled``: CLIENT spans around ``urllib.request`` calls
      (default ``True``).
    - ``engine_export``: send spans, logs and metrics to the engine's ``/otel`` socket
      (default ``True``).
    - ``span_exporters`` / ``log_exporters`` / ``metric_exporters``: extra standard
      OpenTelemetry exporters (e.g. ``OTLPSpanExporter()``), each behind its own batch
      processor / periodic reader, alongside or instead of the engine socket.
    """

    enabled: bool | None = None
    engine_ws_url: str | None = None
    engine_ws_headers: dict[str, str] | None = None
    service_name: str | None = None
    service_version: str | None = None
    service_namespace: str | None = None
    service_instance_id: str | None = None
    spans_flush_interval_ms: int | None = None
    logs_enabled: bool | None = None
    logs_flush_interval_ms: int | None = None
    logs_batch_size: int | None = None
    metrics_enabled: bool = True
    metrics_export_interval_ms: int = 60_000
    fetch_instrumentation_enabled: bool = True
    engine_export: bool = True
    span_exporters: list[Any] = field(default_factory=list)
    log_exporters: list[Any] = field(default_factory=list)
    metric_exporters: list[Any] = field(default_factory=list)

    @classmethod
    def coerce(cls, value: OtelConfig | dict[str, Any] | None) -> OtelConfig:
        """An ``OtelConfig`` from ``None``, a dict of its fields, or itself (``InitOptions.otel``).
        Raises ``TypeError`` for anything else or an unknown key."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls(**value)
        raise TypeError(f"otel must be an OtelConfig or a dict, not {type(value).__name__}")

    def resolved(self) -> OtelConfig:
        """A copy with every ``None`` field filled from the environment or its default."""
        enabled = self.enabled if self.enabled is not None else otel_enabled_from_env()
        return replace(
            self,
            enabled=enabled,
            engine_ws_url=self.engine_ws_url or _env_str("III_URL") or DEFAULT_ENGINE_WS_URL,
            service_name=self.service_name or _env_str("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME,
            service_version=self.service_version or _env_str("SERVICE_VERSION") or "unknown",
            service_namespace=self.service_namespace or _env_str("SERVICE_NAMESPACE"),
            service_instance_id=self.service_instance_id
            or _env_str("SERVICE_INSTANCE_ID")
            or str(uuid.uuid4()),
            spans_flush_interval_ms=self.spans_flush_interval_ms
            or _env_int("OTEL_SPANS_FLUSH_INTERVAL_MS", 100),
            logs_enabled=True if self.logs_enabled is None else self.logs_enabled,
            logs_flush_interval_ms=self.logs_flush_interval_ms
            or _env_int("OTEL_LOGS_FLUSH_INTERVAL_MS", 100),
            logs_batch_size=self.logs_batch_size or _env_int("OTEL_LOGS_BATCH_SIZE", 1),
        )
