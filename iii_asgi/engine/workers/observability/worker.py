"""The ``iii-observability`` worker: the telemetry store, its functions and the ``/otel`` socket.

- ``/otel`` (protocol.md §1.11): a telemetry-only WebSocket, never a worker. Binary frames go to
  the :class:`TelemetryStore`; text frames are ignored; pings are answered by the server.
- Functions (builtins.md §12 names the families ``engine::traces::*``, ``engine::logs::*``,
  ``engine::metrics::list``), all in namespace ``default``:

  ======================== ============================================ ==========================
  function                 input                                        output
  ======================== ============================================ ==========================
  ``engine::traces::list`` ``{trace_id?, service_name?, name?,          ``{spans: [Span], total}``
                           limit?=100, offset?=0}``
  ``engine::traces::tree`` ``{trace_id}``                               ``{trace_id, roots:
                                                                        [Span + children]}``
  ``engine::traces::clear`` ``{}``                                      ``{cleared}``
  ``engine::logs::list``   ``{trace_id?, span_id?, service_name?,       ``{logs: [Log], total}``
                           severity_min?, limit?=100, offset?=0}``
  ``engine::logs::clear``  ``{}``                                       ``{cleared}``
  ``engine::metrics::list`` ``{name?, service_name?}``                  ``{metrics: [Metric]}``
  ``engine::log::<level>`` ``{message, data?, trace_id?, span_id?,      ``null``
                           service_name?}``
  ======================== ============================================ ==========================

  ``traces::tree`` of an unknown trace fails with ``NOT_FOUND``; bad input with
  ``deserialization_error``. Shapes: :mod:`iii_asgi.engine.workers.observability.store`.
- ``engine::traces::clear`` and ``engine::logs::clear`` wipe what every worker reported, so they
  answer ``FORBIDDEN`` unless the operator allowed them (``EngineConfig.telemetry_clear``,
  ``iii-asgi engine --allow-telemetry-clear``; docs/security.md).
- ``engine::log::{trace,debug,info,warn,error}`` (the real engine's observability functions,
  builtins.md §12; :mod:`.logs`) store one record (severity 1/5/9/13/17) readable with
  ``engine::logs::list`` and write it to the process log (logger ``iii_asgi.engine.log``).
- Engine spans (:mod:`iii_asgi.engine.core.tracing`) land in the same store (service ``iii``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ...core.errors import InvocationError
from ...core.registry import CallContext
from ...core.worker import BuiltinWorker, EngineServices
from ...types import Receive, Send
from .logs import LEVELS, log_function
from .store import TelemetryStore

__all__ = ["ObservabilityWorker", "serve_otel"]

logger = logging.getLogger("iii_asgi.engine.otel")


class ObservabilityWorker(BuiltinWorker):
    """The engine's bounded telemetry store (``store``), fed by the ``/otel`` socket, by
    telemetry frames on worker sockets and by engine spans; and its functions."""

    name = "iii-observability"

    def __init__(self, core: EngineServices) -> None:
        self.core = core
        config = core.config
        self.store = TelemetryStore(
            max_traces=config.telemetry_max_traces, max_logs=config.telemetry_max_logs
        )
        core.tracing.add_sink(self.store.add_spans)

    async def serve_socket(self, receive: Receive, send: Send) -> None:
        """Serve one ``/otel`` WebSocket into the store (protocol.md §1.11)."""
        await serve_otel(self.store, receive, send)

    def install(self) -> None:
        table: dict[str, Callable[[CallContext, Any], Any]] = {
            "engine::traces::list": self.traces_list,
            "engine::traces::tree": self.traces_tree,
            "engine::traces::clear": self.traces_clear,
            "engine::logs::list": self.logs_list,
            "engine::logs::clear": self.logs_clear,
            "engine::metrics::list": self.metrics_list,
        }
        for level in LEVELS:
            table[f"engine::log::{level}"] = log_function(self.store, level)
        self.core.registry.add_builtins(table, internal=True)

    def _clearing(self, function_id: str) -> None:
        if not self.core.config.telemetry_clear:
            raise InvocationError(
                "FORBIDDEN",
                f"{function_id} is disabled: it would erase every worker's telemetry "
                "(allow it with EngineConfig.telemetry_clear / --allow-telemetry-clear)",
            )

    async def traces_list(self, context: CallContext, data: Any) -> dict[str, Any]:
        """Stored spans, newest trace first; filter by trace_id, service_name, name."""
        args = _args("engine::traces::list", data, ("trace_id", "service_name", "name"))
        trace_id = args.get("trace_id")
        spans = self.store.trace(trace_id) if trace_id else self.store.spans()
        for key in ("service_name", "name"):
            if args.get(key) is not None:
                spans = [s for s in spans if s[key] == args[key]]
        return {"spans": _page(spans, args), "total": len(spans)}

    async def traces_tree(self, context: CallContext, data: Any) -> dict[str, Any]:
        """The spans of one trace as a tree: roots with nested children."""
        args = _args("engine::traces::tree", data, ("trace_id",), required=("trace_id",))
        spans = self.store.trace(args["trace_id"])
        if not spans:
            raise InvocationError("NOT_FOUND", f"trace {args['trace_id']} not found")
        nodes = {s["span_id"]: {**s, "children": []} for s in spans}
        roots: list[dict[str, Any]] = []
        for node in nodes.values():
            parent = nodes.get(node["parent_span_id"] or "")
            (parent["children"] if parent is not None else roots).append(node)
        return {"trace_id": args["trace_id"].lower(), "roots": roots}

    async def traces_clear(self, context: CallContext, data: Any) -> dict[str, Any]:
        """Forget every stored span (only with EngineConfig.telemetry_clear, else FORBIDDEN)."""
        self._clearing("engine::traces::clear")
        return {"cleared": self.store.clear_traces()}

    async def logs_list(self, context: CallContext, data: Any) -> dict[str, Any]:
        """Stored log records, newest first; filter by trace_id, span_id, service_name,
        severity_min."""
        args = _args("engine::logs::list", data, ("trace_id", "span_id", "service_name"))
        logs = self.store.recent_logs()
        for key in ("trace_id", "span_id"):
            if args.get(key) is not None:
                logs = [r for r in logs if r[key] == str(args[key]).lower()]
        if args.get("service_name") is not None:
            logs = [r for r in logs if r["service_name"] == args["service_name"]]
        minimum = args.get("severity_min")
        if minimum is not None:
            if not isinstance(minimum, int) or isinstance(minimum, bool):
                raise _bad("engine::logs::list", "invalid type for `severity_min`: expected int")
            logs = [r for r in logs if r["severity_number"] >= minimum]
        return {"logs": _page(logs, args), "total": len(logs)}

    async def logs_clear(self, context: CallContext, data: Any) -> dict[str, Any]:
        """Forget every stored log record (only with EngineConfig.telemetry_clear, else
        FORBIDDEN)."""
        self._clearing("engine::logs::clear")
        return {"cleared": self.store.clear_logs()}

    async def metrics_list(self, context: CallContext, data: Any) -> dict[str, Any]:
        """Stored metric reports, newest first; filter by name, service_name."""
        args = _args("engine::metrics::list", data, ("name", "service_name"))
        metrics = self.store.recent_metrics()
        for key in ("name", "service_name"):
            if args.get(key) is not None:
                metrics = [m for m in metrics if m[key] == args[key]]
        return {"metrics": metrics}


def _bad(function_id: str, reason: str) -> InvocationError:
    return InvocationError(
        "deserialization_error", f"Failed to deserialize input for {function_id}: {reason}"
    )


def _args(
    function_id: str, data: Any, strings: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _bad(function_id, f"invalid type: {type(data).__name__}, expected an object")
    for key in strings:
        value = data.get(key)
        if value is None:
            if key in required:
                raise _bad(function_id, f"missing field `{key}`")
        elif not isinstance(value, str):
            raise _bad(function_id, f"invalid type for `{key}`: expected str")
    for key in ("limit", "offset"):
        value = data.get(key)
        bad = not isinstance(value, int) or isinstance(value, bool) or value < 0
        if value is not None and bad:
            raise _bad(function_id, f"invalid value for `{key}`: expected a non-negative int")
    return data


def _page(items: list[dict[str, Any]], args: dict[str, Any]) -> list[dict[str, Any]]:
    offset = args.get("offset") or 0
    limit = args.get("limit")
    return items[offset : offset + (100 if limit is None else limit)]


async def serve_otel(store: TelemetryStore, receive: Receive, send: Send) -> None:
    """Serve one accepted ``/otel`` WebSocket (protocol.md §1.11; the worker listener accepts
    and authenticates it): store binary frames, ignore text."""
    store.sockets_opened += 1
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.disconnect":
            return
        if kind == "websocket.receive":
            data = message.get("bytes")
            if data:
                store.ingest(data)
