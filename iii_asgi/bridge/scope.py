"""The ASGI ``scope`` of an engine HTTP invocation (builtins.md §3.5 payload → ASGI 3.0 HTTP
connection scope, spec 2.4). See :mod:`.driver` for the whole exchange."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, unquote

import pydantic_core
from opentelemetry import trace as _otel_trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .dependencies import InvocationInfo
from .paths import concrete_path

__all__ = ["first", "has_body", "request_scope"]

_ASGI = {"version": "3.0", "spec_version": "2.4"}
_NO_HEADERS: dict[str, str] = {}  # read only
#: The trace context the app gets from the worker's span: ``traceparent`` / ``tracestate``
#: (the client's other headers, its ``baggage`` included, stay exactly as sent).
_W3C = TraceContextTextMapPropagator()


def first(value: Any) -> str | None:
    """The value of a payload header or query entry (the last one of a repeated name)."""
    if isinstance(value, list):
        return value[-1] if value else None
    return value if isinstance(value, str) else None


def has_body(headers: Mapping[str, Any]) -> bool:
    length = first(headers.get("content-length"))
    if length is not None:
        return length.strip() not in ("", "0")
    return headers.get("transfer-encoding") is not None


def _query_string(query: Mapping[str, Any]) -> bytes:
    if not query:
        return b""
    parts: list[str] = []
    for name, value in query.items():
        key = quote_plus(name)
        if isinstance(value, list):
            parts.extend(f"{key}={quote_plus(str(v))}" for v in value)
        else:
            parts.append(f"{key}={quote_plus(str(value))}")
    return "&".join(parts).encode("latin-1")


def _server(host: str | None) -> tuple[str, int | None] | None:
    """``(host, port)`` from a ``Host`` header (``[::1]:3111`` too)."""
    if not host:
        return None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and (name.endswith("]") or ":" not in name):
        return name.strip("[]"), int(port)
    return host.strip("[]"), None


def _client(value: Any, fallback: tuple[str, int] | None) -> tuple[str, int] | None:
    """The payload's ``client`` (``{"host", "port"}``, the embedded engine's HTTP peer)."""
    if isinstance(value, dict):
        host, port = value.get("host"), value.get("port")
        if isinstance(host, str):
            return host, port if isinstance(port, int) else 0
    return fallback


def _trace_headers(invocation: InvocationInfo) -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) for the app: the current OpenTelemetry context (the
    SDK's span around this handler, a child of the invocation's trace), else the invocation's
    ``traceparent``; empty when there is neither (the request's own headers then stay). W3C
    trace context only (the headers it names), whatever the global propagator."""
    if (
        not invocation.traceparent
        and not _otel_trace.get_current_span().get_span_context().is_valid
    ):
        return _NO_HEADERS
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    if "traceparent" not in carrier and invocation.traceparent:
        carrier["traceparent"] = invocation.traceparent
    return carrier


def request_scope(
    data: dict[str, Any],
    invocation: InvocationInfo,
    *,
    state: dict[str, Any] | None,
    root_path: str,
    client: tuple[str, int] | None,
) -> tuple[dict[str, Any], bytes | None]:
    """The scope of the invocation ``data``, and the request body to deliver in one message
    when it is JSON the engine parsed (``None``: read the ``request_body`` channel, if the
    request has a body)."""
    raw_headers: Mapping[str, Any] = data.get("headers") or {}
    headers: list[tuple[bytes, bytes]] = []
    trace_headers = _trace_headers(invocation)
    body: bytes | None = None
    body_value = data.get("body")
    if body_value is not None:
        content_type = first(raw_headers.get("content-type"))
        if content_type is None or "application/json" in content_type:
            # The engine sets body only for JSON requests (§3.5); a hand-made call may omit
            # the content-type: its body is JSON too.
            body = pydantic_core.to_json(body_value)
            if content_type is None:
                headers.append((b"content-type", b"application/json"))
    append = headers.append
    for name, value in raw_headers.items():
        if trace_headers and name in trace_headers:
            continue
        if body is not None and name in ("content-length", "transfer-encoding"):
            continue
        if type(value) is str:
            append((name.encode("latin-1"), value.encode()))
        elif isinstance(value, list):
            key = name.encode("latin-1")
            headers.extend((key, v.encode()) for v in value)
        else:
            raise TypeError(
                f"header {name!r} of the http trigger payload is a {type(value).__name__}: "
                "expected a string or a list of strings (builtins.md §3.5)"
            )
    if body is not None:
        append((b"content-length", b"%d" % len(body)))
    for name, value in trace_headers.items():
        append((name.encode("latin-1"), value.encode("latin-1")))
    template = data.get("path") or "/"
    raw_path = concrete_path(template, data.get("path_params") or {})
    query = data.get("query_params")
    host = raw_headers.get("host")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": _ASGI,
        "http_version": "1.1",
        "method": data.get("method") or "GET",
        "scheme": data.get("scheme") or "http",
        "path": unquote(raw_path) if "%" in raw_path else raw_path,
        "raw_path": raw_path.encode("latin-1", "replace"),
        "query_string": _query_string(query) if query else b"",
        "root_path": root_path,
        "headers": headers,
        "server": _server(host if type(host) is str else first(host)),
        "client": _client(data.get("client"), client),
        "extensions": {
            "iii": {
                "function_id": invocation.function_id,
                "invocation_id": invocation.invocation_id,
                "worker_id": invocation.worker_id,
                "route": invocation.route,
                "traceparent": invocation.traceparent,
                "baggage": invocation.baggage,
            }
        },
        "iii_invocation": invocation,
    }
    if state is not None:
        scope["state"] = state.copy()
    return scope, body
