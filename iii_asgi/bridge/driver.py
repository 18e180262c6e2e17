"""The ASGI driver: one engine HTTP invocation → ``app(scope, receive, send)`` → the answer.

Input is the http trigger payload (builtins.md §3.5) with its channel refs already turned into a
live ``ChannelReader`` (``request_body``) and ``ChannelWriter`` (``response``) by the SDK.

- **scope** (ASGI HTTP connection scope, spec 2.4): method; the concrete path rebuilt from the
  trigger template and ``path_params`` (the engine does not send the URL); the query string
  re-encoded with repeated keys; every header value (a repeated header arrives as a list);
  ``traceparent`` / ``baggage`` of the invocation put into the headers; ``server`` from
  ``Host``; ``client`` from ``X-Forwarded-For`` when present, else ``None``; the lifespan
  ``state`` (a shallow copy, as uvicorn does).
- **receive**: a JSON body the engine parsed (``body``) is re-encoded and sent in one message
  (``content-length`` adjusted); any other body is read from the request-body channel chunk by
  chunk with ``more_body``; a request without a body opens no channel. After the body,
  ``receive`` waits and returns ``http.disconnect`` once the response is done or the engine
  side went away.
- **send**: a complete response (one body message without ``more_body``) of at most
  :data:`BUFFER_LIMIT` bytes of UTF-8 text with a ``content-type`` is returned as a buffered
  result (§3.7: ``{"status_code", "headers": ["Name: value", ...], "body": text}``); anything
  else (``more_body`` streaming, SSE, files, binary or large bodies, no content-type) goes out
  through the response channel as it is produced (§3.8: ``set_status``, ``set_headers``, binary
  frames, close), each ``send`` awaiting the socket (backpressure). A failed channel write
  means the engine dropped the request: ``send`` raises ``OSError`` (as uvicorn does for a gone
  client) and ``receive`` returns ``http.disconnect``.
- **errors**: an exception before the response started is a 500 ``Internal Server Error``
  (text/plain), as uvicorn answers; after a complete response it is only logged; mid-stream
  the body is ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, unquote

import pydantic_core
from opentelemetry import trace as _otel_trace
from opentelemetry.propagate import inject as _otel_inject
from starlette.types import ASGIApp, Message, Scope

from iii.channels import ChannelError, ChannelReader, ChannelWriter
from iii.context import current_invocation
from iii.protocol import is_channel_ref

from .dependencies import InvocationInfo
from .routes import concrete_path

__all__ = ["BUFFER_LIMIT", "drive"]

logger = logging.getLogger("iii_asgi.bridge")

#: Largest response body returned as a buffered result (bytes); larger ones are streamed.
BUFFER_LIMIT = 256 * 1024
_ASGI = {"version": "3.0", "spec_version": "2.4"}
_SERVER_ERROR = {
    "status_code": 500,
    "headers": ["content-type: text/plain; charset=utf-8"],
    "body": "Internal Server Error",
}
_SKIP_BUFFERED = frozenset({b"content-length", b"transfer-encoding", b"connection"})


class _Gone(OSError):
    """The engine closed the response channel: the client went away or the request timed out."""


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return value[-1] if value else None
    return value if isinstance(value, str) else None


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


class _Exchange:
    """The state of one driven request."""

    __slots__ = (
        "body",
        "channel_headers",
        "chunks",
        "data",
        "disconnected",
        "done",
        "engine_url",
        "expected",
        "gone",
        "headers",
        "reader",
        "reader_iter",
        "received",
        "request_done",
        "result",
        "started",
        "status",
        "writer",
    )

    def __init__(
        self, data: dict[str, Any], engine_url: str, channel_headers: Mapping[str, str] | None
    ) -> None:
        self.data = data
        self.engine_url = engine_url
        self.channel_headers = channel_headers
        self.body: bytes = b""
        self.reader: ChannelReader | None = None
        self.reader_iter: Any = None
        self.request_done = False
        self.disconnected: asyncio.Event | None = None
        self.started = False
        self.done = False
        self.status = 200
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.writer: ChannelWriter | None = None  # set once streaming
        self.result: Any = None
        self.gone = False  # the engine closed a channel: the request is over
        self.expected: int | None = None  # the request's content-length, when it has one
        self.received = 0

    # -- receive --------------------------------------------------------------------------------

    async def receive(self) -> Message:
        if not self.request_done:
            reader = self.reader
            if reader is None:
                self.request_done = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            if self.reader_iter is None:
                self.reader_iter = reader.__aiter__()
            try:
                chunk = await self.reader_iter.__anext__()
            except StopAsyncIteration:
                self.request_done = True
                if self.expected is not None and self.received < self.expected:
                    # The engine ended the channel early: the client went away mid-upload.
                    self.gone = True
                    self.finish()
                    return {"type": "http.disconnect"}
                return {"type": "http.request", "body": b"", "more_body": False}
            except ChannelError:
                self.request_done = True
                self.gone = True
                self.finish()
                return {"type": "http.disconnect"}
            self.received += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": True}
        if not self.done:
            if self.disconnected is None:
                self.disconnected = asyncio.Event()
            await self.disconnected.wait()
        return {"type": "http.disconnect"}

    def finish(self) -> None:
        self.done = True
        if self.disconnected is not None:
            self.disconnected.set()

    # -- send -----------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.started = True
            self.status = message["status"]
            self.headers = list(message.get("headers") or ())
            return
        if kind != "http.response.body":
            return  # trailers, pathsend, ...: not offered in the scope's extensions
        if not self.started:
            raise RuntimeError("http.response.body sent before http.response.start")
        if self.done:
            if self.writer is not None:
                raise _Gone("the response is complete or the engine dropped the request")
            return
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if self.writer is not None:
            await self._write(body)
            if not more:
                await self._close()
            return
        if more:
            if body:
                self.chunks.append(body)
            if self.chunks:
                await self._open_stream()
            return
        if self.chunks:
            self.chunks.append(body)
            body = b"".join(self.chunks)
            self.chunks = []
        result = self._buffered(body)
        if result is None:
            self.chunks = [body] if body else []
            await self._open_stream()
            await self._close()
        else:
            self.result = result
            self.finish()

    def _buffered(self, body: bytes) -> dict[str, Any] | None:
        """The §3.7 result for a complete response, or ``None`` when it must be streamed."""
        if len(body) > BUFFER_LIMIT:
            return None
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return None
        lines = []
        typed = False
        for name, value in self.headers:
            lower = name.lower()
            if lower in _SKIP_BUFFERED:
                continue
            if lower == b"content-type":
                typed = True
            lines.append(f"{name.decode('latin-1')}: {value.decode('latin-1')}")
        if not typed:
            return None  # the engine would add application/json and JSON-encode the body
        return {"status_code": self.status, "headers": lines, "body": text}

    def channel_end(self, key: str) -> Any:
        """The payload's ``request_body`` / ``response`` as a live channel end, opened lazily
        (the SDK leaves the bridge's refs unresolved: most requests never touch them)."""
        value = self.data.get(key)
        if isinstance(value, (ChannelReader, ChannelWriter)):
            return value
        if isinstance(value, dict) and is_channel_ref(value):
            cls = ChannelReader if value["direction"] == "read" else ChannelWriter
            end = cls(self.engine_url, value, self.channel_headers)
            self.data[key] = end
            return end
        return None

    async def _open_stream(self) -> None:
        writer = self.channel_end("response")
        if not isinstance(writer, ChannelWriter):
            raise RuntimeError("the http trigger payload has no response channel to stream on")
        self.writer = writer
        headers: dict[str, str] = {}
        for raw_name, raw_value in self.headers:
            name = raw_name.decode("latin-1").lower()
            if name in ("content-length", "transfer-encoding", "connection"):
                continue
            value = raw_value.decode("latin-1")
            if name in headers and name != "set-cookie":
                headers[name] = f"{headers[name]}, {value}"
            else:
                if name in headers:
                    logger.warning(
                        "iii bridge: a streamed response carries one set-cookie header only "
                        "(builtins.md §3.8 set_headers is a map)"
                    )
                headers[name] = value
        try:
            await writer.send_message_async(
                '{"type":"set_status","status_code":%d}' % self.status  # noqa: UP031
            )
            await writer.send_message_async(
                pydantic_core.to_json({"type": "set_headers", "headers": headers}).decode()
            )
            chunks, self.chunks = self.chunks, []
            for chunk in chunks:
                await writer.write(chunk)
        except Exception as exc:
            self._lost(exc)

    async def _write(self, body: bytes) -> None:
        if not body:
            return
        assert self.writer is not None
        try:
            await self.writer.write(body)
        except Exception as exc:
            self._lost(exc)

    async def _close(self) -> None:
        assert self.writer is not None
        self.finish()
        try:
            await self.writer.close_async()
        except Exception:
            logger.debug("closing the response channel failed", exc_info=True)

    def _lost(self, exc: BaseException) -> None:
        self.gone = True
        self.finish()
        raise _Gone(f"the engine dropped the request: {exc}") from exc


def _scope(
    data: dict[str, Any],
    exchange: _Exchange,
    state: dict[str, Any] | None,
    root_path: str,
    invocation: InvocationInfo,
) -> Scope:
    raw_headers: Mapping[str, Any] = data.get("headers") or {}
    headers: list[tuple[bytes, bytes]] = []
    trace_headers = _trace_headers(invocation)
    json_body = False
    content_type = _first(raw_headers.get("content-type"))
    body_value = data.get("body")
    if body_value is not None and (content_type is None or "application/json" in content_type):
        # The engine sets body only for JSON requests (§3.5); a hand-made call may omit the
        # content-type: its body is JSON too.
        json_body = True
        exchange.body = pydantic_core.to_json(body_value)
        if content_type is None:
            headers.append((b"content-type", b"application/json"))
    elif _has_body(raw_headers):
        reader = exchange.channel_end("request_body")
        if isinstance(reader, ChannelReader):
            exchange.reader = reader
            length = _first(raw_headers.get("content-length"))
            if length is not None and length.strip().isdigit():
                exchange.expected = int(length)
    for name, value in raw_headers.items():
        if json_body and name in ("content-length", "transfer-encoding"):
            continue
        if name in trace_headers:
            continue
        key = name.encode("latin-1")
        if isinstance(value, list):
            headers.extend((key, v.encode()) for v in value)
        else:
            headers.append((key, value.encode()))
    if json_body:
        headers.append((b"content-length", str(len(exchange.body)).encode()))
    for name, value in trace_headers.items():
        headers.append((name.encode("latin-1"), value.encode("latin-1")))
    raw_path = concrete_path(data.get("path") or "/", data.get("path_params") or {})
    path = unquote(raw_path) if "%" in raw_path else raw_path
    forwarded = _first(raw_headers.get("x-forwarded-for"))
    scheme = _first(raw_headers.get("x-forwarded-proto")) or "http"
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": _ASGI,
        "http_version": "1.1",
        "method": data.get("method") or "GET",
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path.encode("latin-1", "replace"),
        "query_string": _query_string(data.get("query_params") or {}),
        "root_path": root_path,
        "headers": headers,
        "server": _server(_first(raw_headers.get("host"))),
        "client": (forwarded.split(",")[0].strip(), 0) if forwarded else None,
        "extensions": {},
        "iii_invocation": invocation,
    }
    if state is not None:
        scope["state"] = state.copy()
    return scope


def _trace_headers(invocation: InvocationInfo) -> dict[str, str]:
    """``traceparent`` / ``baggage`` for the app: the current OpenTelemetry context (the SDK's
    span around this handler, a child of the invocation's trace), else the invocation's own
    values; empty when there is neither (the request's own headers then stay)."""
    carrier: dict[str, str] = {}
    if invocation.traceparent or invocation.baggage or _span_is_valid():
        _otel_inject(carrier)
    if "traceparent" not in carrier and invocation.traceparent:
        carrier["traceparent"] = invocation.traceparent
    if "baggage" not in carrier and invocation.baggage:
        carrier["baggage"] = invocation.baggage
    return {k: v for k, v in carrier.items() if k in ("traceparent", "tracestate", "baggage")}


def _span_is_valid() -> bool:
    return bool(_otel_trace.get_current_span().get_span_context().is_valid)


def _has_body(headers: Mapping[str, Any]) -> bool:
    length = _first(headers.get("content-length"))
    if length is not None:
        return length.strip() not in ("", "0")
    return headers.get("transfer-encoding") is not None


async def drive(
    app: ASGIApp,
    data: Any,
    *,
    state: dict[str, Any] | None = None,
    root_path: str = "",
    extra_scope: Mapping[str, Any] | None = None,
    engine_url: str = "",
    channel_headers: Mapping[str, str] | None = None,
) -> Any:
    """Serve one http trigger invocation with ``app``; returns the buffered result (a dict) or
    ``None`` when the response went out through the response channel.

    Channel refs still in ``data`` are opened on ``engine_url`` (the worker's engine URL) with
    ``channel_headers``, and only when the request has a body or the response streams.

    Raises ``TypeError`` when ``data`` is not the http trigger's payload dict. Another worker
    may call a route function with a hand-made request (``{"method": "GET", "path":
    "/todos/1"}``); a response that must stream then fails (no response channel).
    """
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        raise TypeError(
            "the bridge expects the http trigger's request payload (a dict with at least "
            f"'path', builtins.md §3.5), got {type(data).__name__}"
            + (f" with keys {sorted(data)[:8]}" if isinstance(data, dict) else "")
            + ": was this function invoked by an http trigger?"
        )
    context = current_invocation()
    invocation = InvocationInfo(
        via_engine=True,
        function_id=context.function_id if context else None,
        invocation_id=context.invocation_id if context else None,
        traceparent=context.traceparent if context else None,
        baggage=context.baggage if context else None,
        worker_id=context.worker_id if context else None,
        route=data.get("path"),
    )
    exchange = _Exchange(data, engine_url, channel_headers)
    scope = _scope(data, exchange, state, root_path, invocation)
    if extra_scope:
        scope.update(extra_scope)
    try:
        await app(scope, exchange.receive, exchange.send)
    except Exception as exc:
        if exchange.writer is not None:
            if exchange.gone:  # the app saw the disconnect (OSError / ClientDisconnect)
                logger.debug("stream ended: the engine dropped the request", exc_info=exc)
            else:
                logger.error("Exception in ASGI application (mid-stream)", exc_info=exc)
            if not exchange.done:
                await exchange._close()
            return None
        logger.error("Exception in ASGI application", exc_info=exc)
        if exchange.result is not None:
            return exchange.result
        exchange.finish()
        return dict(_SERVER_ERROR)
    finally:
        exchange.finish()
    if exchange.writer is not None:
        if not exchange.writer._closed:
            await exchange.writer.close_async()
        return None
    if exchange.result is not None:
        return exchange.result
    if not exchange.started:
        logger.error("ASGI callable returned without starting response")
        return dict(_SERVER_ERROR)
    # Started but no final body message: send what was produced.
    body = b"".join(exchange.chunks)
    exchange.chunks = []
    result = exchange._buffered(body)
    if result is not None:
        return result
    exchange.chunks = [body] if body else []
    await exchange._open_stream()
    await exchange._close()
    return None
