"""One client's resolved settings: the parts of the client read them from here."""

from __future__ import annotations

import os
import platform
from typing import Any

from ._memory_transport import Transport, resolve_transport
from .options import InitOptions, ReconnectionConfig, resolve_engine_url

__all__ = ["SDK_VERSION", "ClientConfig"]

SDK_VERSION = "0.1.0"


class ClientConfig:
    """``address``, ``name``, ``namespace``, ``headers``, ``reconnection`` and ``transport``
    resolved once from the arguments and the environment (:class:`iii.InitOptions`); ``options``
    as given.

    Raises ``ValueError`` for a blank namespace or an unknown transport.
    """

    __slots__ = ("address", "headers", "name", "namespace", "options", "reconnection", "transport")

    def __init__(self, address: str | None, options: InitOptions | None) -> None:
        self.address = resolve_engine_url(address)
        self.options = options or InitOptions()
        self.name = self.options.resolved_worker_name()
        self.namespace = self.options.resolved_namespace()
        self.headers = self.options.resolved_headers()
        self.reconnection = self.options.reconnection_config or ReconnectionConfig()
        self.transport: Transport = resolve_transport(self.options.transport)

    def worker_metadata(self) -> dict[str, Any]:
        """The payload of ``engine::workers::register`` (protocol.md §7.2.1)."""
        telemetry = self.options.telemetry
        data: dict[str, Any] = {
            "runtime": "python",
            "version": SDK_VERSION,
            "name": self.name,
            "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
            "pid": os.getpid(),
            "isolation": os.environ.get("III_ISOLATION") or None,
            "namespace": self.namespace,
            "telemetry": {
                "language": (telemetry.language if telemetry else None)
                or os.environ.get("LANG", "").split(".")[0]
                or None,
                "project_name": telemetry.project_name if telemetry else None,
                "framework": (telemetry.framework if telemetry else None) or "iii-asgi",
            },
            "features": ["large-messages.v1"],
            # iii-asgi: invocations it can hold (handlers and backlog, iii/_slots.py); our
            # engine refuses more with WORKER_BACKPRESSURE, others ignore the key
            "max_inflight_invocations": 2 * self.options.max_concurrent_handlers,
        }
        if self.options.worker_description:
            data["description"] = self.options.worker_description
        return data
