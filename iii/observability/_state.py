"""The SDK's process-wide OpenTelemetry state: set by ``init_otel``, cleared by
``shutdown_otel``."""

from __future__ import annotations

from typing import Any

from ._config import OtelConfig

__all__ = ["State", "state"]


class State:
    """``tracer`` / ``otel_logger`` are ``None`` while OTel is not initialised (or disabled)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.config: OtelConfig | None = None
        self.tracer_provider: Any = None
        self.logger_provider: Any = None
        self.meter_provider: Any = None
        self.tracer: Any = None
        #: Starts handler spans without the SDK's per-span machinery (``_handler_span``).
        self.handler_spans: Any = None
        self.otel_logger: Any = None
        #: ``(function_id, "ok"|"error")`` → ``[count, total run time in ms]``.
        self.stats: dict[tuple[str, str], list[Any]] | None = None
        self.payloads = True
        self.max_bytes: int | None = None
        self.connection: Any = None
        self.uninstrument: list[Any] = []

    @property
    def initialized(self) -> bool:
        return self.config is not None


state = State()
