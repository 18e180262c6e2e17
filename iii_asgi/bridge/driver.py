"""The ASGI driver: one engine HTTP invocation → ``app(scope, receive, send)`` → the answer.

Input is the http trigger payload (builtins.md §3.5); its channel refs are opened lazily.

- **scope** (ASGI HTTP connection scope, spec 2.4): method; the concrete path rebuilt from the
  trigger template and ``path_params`` (the engine does not send the URL); the query string
  re-encoded with repeated keys; exactly the client's headers (a repeated header arrives as a
  list from the embedded engine), except ``traceparent`` / ``tracestate``, set to the current
  trace context (the SDK's span around the handler, else the invocation's); ``server`` from
  ``Host``; ``client`` from the payload's ``client`` (the embedded engine's extension: the
  HTTP peer), else the ``client`` argument; ``scheme`` from its ``scheme`` (https), else
  ``http``; the lifespan ``state`` (a shallow copy, as uvicorn does);
  ``extensions["iii"]``: the invocation (``function_id``, ``invocation_id``, ``worker_id``,
  ``route``, ``traceparent``, ``baggage``). See :mod:`.scope`.
- **receive**: a JSON body the engine parsed (``body``) is re-encoded and sent in one message
  (``content-length`` adjusted); any other body is read from the request-body channel chunk by
  chunk with ``more_body``; a request without a body opens no channel. After the body,
  ``receive`` waits and returns ``http.disconnect`` once the response is done or the engine
  side went away.
- **send**: a complete response (one body message without ``more_body``) of at most
  :data:`BUFFER_LIMIT` bytes of UTF-8 text with a ``content-type``, whose ``content-length`` (if
  any) is its length and whose status carries a body, is returned as a buffered result (§3.7:
  ``{"status_code", "headers": ["Name: value", ...], "body": text}``); anything else (``more_body``
  streaming, SSE, files, binary or large bodies, 204/304, a HEAD answer declaring the GET
  length) goes out through the response channel as it is produced (§3.8: ``set_status``,
  ``set_headers`` with the app's ``content-length`` kept, binary frames, close), each ``send``
  awaiting the socket (backpressure). A failed channel write means the engine dropped the
  request: ``send`` raises ``OSError`` (as uvicorn does for a gone client) and ``receive``
  returns ``http.disconnect``.
- **timing**: the invocation answers as soon as the app sent its final body message (or closed
  the stream), while the app goes on (``BackgroundTasks``, the exit code of ``yield``
  dependencies). Given ``answer`` (the SDK's :func:`iii.context.early_answer`), the app runs in
  the handler's own task and ``answer`` sends the result from inside the app's final ``send``
  (no task of its own, no hop); otherwise the app runs in a task of its own, tracked in
  ``tasks``, and ``drive`` returns the result.
- **errors**: an exception before the response started is a 500 ``Internal Server Error``
  (text/plain), as uvicorn answers; after a complete response it is only logged; mid-stream
  the body is ended. Each is also handed to ``on_error`` (the test client re-raises it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pydantic_core
from starlette.types import ASGIApp, Message, Scope

from iii._frozen import build
from iii.channels import ChannelError, ChannelReader, ChannelWriter
from iii.context import current_invocation
from iii.protocol import is_channel_ref

from .dependencies import InvocationInfo
from .scope import first, has_body, request_scope

__all__ = ["BUFFER_LIMIT", "drive"]

logger = logging.getLogger("iii_asgi.bridge")

#: Largest response body returned as a buffered result (bytes); larger ones are streamed.
BUFFER_LIMIT = 256 * 1024
_SERVER_ERROR = {
    "status_code": 500,
    "headers": ["content-type: text/plain; charset=utf-8"],
    "body": "Internal Server Error",
}
_SKIP_BUFFERED = frozenset({b"content-length", b"transfer-encoding", b"connection"})
#: Per-hop framing the engine's server does itself (``content-length`` is kept: §3.8 headers).
_SKIP_STREAMED = frozenset({"transfer-encoding", "connection"})
#: Statuses without a body: never buffered (the engine would add ``content-length: 0``).
_NO_BODY = frozenset({204, 304})

ErrorHook = Callable[[BaseException], None]


class _Gone(OSError):
    """The engine closed the response channel: the client went away or the request timed out."""


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
        "head",
        "headers",
        "outcome",
        "reader",
        "reader_iter",
        "received",
        "reply",
        "request_done",
        "result",
        "started",
        "status",
        "writer",
    )

    def __init__(
        self,
        data: dict[str, Any],
        engine_url: str,
        channel_headers: Mapping[str, str] | None,
        outcome: asyncio.Future[Any] | None,
        reply: Callable[[Any], bool] | None = None,
    ) -> None:
        self.data = data
        self.engine_url = engine_url
        self.channel_headers = channel_headers
        # The invocation's answer, given at the final body message: the SDK's early answer
        # (``reply``), else this future (the driving coroutine returns it).
        self.outcome = outcome
        self.reply = reply
        self.body: bytes = b""
        self.reader: ChannelReader | None = None
        self.reader_iter: Any = None
        self.request_done = False
        self.disconnected: asyncio.Event | None = None
        self.started = False
        self.done = False
        self.status = 200
        self.headers: list[tuple[bytes, bytes]] = []
        self.head = data.get("method") == "HEAD"
        self.chunks: list[bytes] = []
        self.writer: ChannelWriter | None = None  # set once streaming
        self.result: Any = None
        self.gone = False  # the engine closed a channel: the request is over
        self.expected: int | None = None  # the request's content-length, when it has one
        self.received = 0

    def answer(self, result: Any) -> None:
        """Hand the invocation its answer (once; the app may still be running)."""
        reply = self.reply
        if reply is not None:
            self.reply = None
            reply(result)
        elif self.outcome is not None and not self.outcome.done():
            self.outcome.set_result(result)

    @property
    def answered(self) -> bool:
        outcome = self.outcome
        return self.reply is None if outcome is None else outcome.done()

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
        await self.complete(body)

    async def complete(self, body: bytes) -> None:
        """The whole response is ``body``: the buffered result, or a stream when it must be."""
        result = self._buffered(body)
        if result is None:
            self.chunks = [body] if body else []
            await self._open_stream()
            await self._close()
        else:
            self.result = result
            self.finish()
            self.answer(result)

    def _buffered(self, body: bytes) -> dict[str, Any] | None:
        """The §3.7 result for a complete response, or ``None`` when it must be streamed (the
        engine frames a result itself: ``content-length`` of the body it sends)."""
        if len(body) > BUFFER_LIMIT or self.status in _NO_BODY or self.status < 200:
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
                if lower == b"content-length" and self.head and value != b"%d" % len(body):
                    return None  # HEAD: the length of the GET body, which is not sent
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

    def _control(self) -> list[str]:
        """The §3.8 control messages of the response head. ``set_headers`` is a map: a
        repeated header is sent joined (the last ``set-cookie``: cookies cannot be joined),
        then once more as the list of its values, which the embedded engine sends as separate
        header lines (the real engine skips a non-string value, keeping the first form)."""
        headers: dict[str, str] = {}
        repeated: dict[str, list[str]] = {}
        for raw_name, raw_value in self.headers:
            name = raw_name.decode("latin-1").lower()
            if name in _SKIP_STREAMED:
                continue
            value = raw_value.decode("latin-1")
            if name in headers:
                repeated.setdefault(name, [headers[name]]).append(value)
                headers[name] = value if name == "set-cookie" else f"{headers[name]}, {value}"
            else:
                headers[name] = value
        messages = [
            '{"type":"set_status","status_code":%d}' % self.status,  # noqa: UP031
            pydantic_core.to_json({"type": "set_headers", "headers": headers}).decode(),
        ]
        if repeated:
            messages.append(
                pydantic_core.to_json({"type": "set_headers", "headers": repeated}).decode()
            )
        return messages

    async def _open_stream(self) -> None:
        writer = self.channel_end("response")
        if not isinstance(writer, ChannelWriter):
            raise RuntimeError("the http trigger payload has no response channel to stream on")
        self.writer = writer
        try:
            for message in self._control():
                await writer.send_message_async(message)
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
        self.answer(None)

    def _lost(self, exc: BaseException) -> None:
        self.gone = True
        self.finish()
        self.answer(None)
        raise _Gone(f"the engine dropped the request: {exc}") from exc


async def _run(app: ASGIApp, scope: Scope, exchange: _Exchange, on_error: ErrorHook | None) -> None:
    """Run the app for one request in its own task; answer the invocation when the app is done
    with the response (or here, at the latest)."""
    outcome = exchange.outcome
    assert outcome is not None
    try:
        exchange.answer(await _call(app, scope, exchange, on_error))
    except Exception as exc:  # the driver's own failure (e.g. no response channel to stream on)
        if on_error is not None:
            on_error(exc)
        if outcome.done():
            logger.error("iii bridge: finishing the response failed", exc_info=exc)
        else:
            outcome.set_exception(exc)
    except BaseException:
        outcome.cancel()
        raise


async def _call(app: ASGIApp, scope: Scope, exchange: _Exchange, on_error: ErrorHook | None) -> Any:
    try:
        await app(scope, exchange.receive, exchange.send)
    except Exception as exc:
        if on_error is not None:
            on_error(exc)
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
    await exchange.complete(body)
    return exchange.result


async def drive(
    app: ASGIApp,
    data: Any,
    *,
    state: dict[str, Any] | None = None,
    root_path: str = "",
    extra_scope: Mapping[str, Any] | None = None,
    engine_url: str = "",
    channel_headers: Mapping[str, str] | None = None,
    client: tuple[str, int] | None = None,
    tasks: set[asyncio.Task[None]] | None = None,
    on_error: ErrorHook | None = None,
    answer: Callable[[Any], bool] | None = None,
) -> Any:
    """Serve one http trigger invocation with ``app``; returns the buffered result (a dict) or
    ``None`` when the response went out through the response channel, as soon as the app has
    sent its final body message. The app's task (still running then, e.g. for background
    tasks) is added to ``tasks`` until it ends.

    ``answer``: the SDK's early answer (:func:`iii.context.early_answer`). With it the app runs
    in the calling task, the result goes out through ``answer`` as soon as the final body
    message is sent, and ``drive`` returns ``None`` when the app is done (background tasks
    included); an exception before the answer is raised.

    Channel refs still in ``data`` are opened on ``engine_url`` (the worker's engine URL) with
    ``channel_headers``, and only when the request has a body or the response streams.
    ``client``: the scope's ``client`` when the payload has none (the real engine's).
    ``on_error``: called with every exception the app raises.

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
    invocation = build(
        InvocationInfo,
        via_engine=True,
        function_id=context.function_id if context else None,
        invocation_id=context.invocation_id if context else None,
        traceparent=context.traceparent if context else None,
        baggage=context.baggage if context else None,
        worker_id=context.worker_id if context else None,
        route=data.get("path"),
    )
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[Any] | None = None if answer is not None else loop.create_future()
    exchange = _Exchange(data, engine_url, channel_headers, outcome, answer)
    scope, body = request_scope(data, invocation, state=state, root_path=root_path, client=client)
    if body is not None:
        exchange.body = body
    elif has_body(data.get("headers") or {}):
        reader = exchange.channel_end("request_body")
        if isinstance(reader, ChannelReader):
            exchange.reader = reader
            length = first((data.get("headers") or {}).get("content-length"))
            if length is not None and length.strip().isdigit():
                exchange.expected = int(length)
    if extra_scope:
        scope.update(extra_scope)
    if outcome is None:  # in this task, answering through ``answer``
        try:
            result = await _call(app, scope, exchange, on_error)
        except Exception as exc:  # the driver's own (e.g. no response channel to stream on)
            if on_error is not None:
                on_error(exc)
            if not exchange.answered:
                raise
            logger.error("iii bridge: finishing the response failed", exc_info=exc)
            return None
        exchange.answer(result)
        return None
    task = loop.create_task(_run(app, scope, exchange, on_error))
    if tasks is not None:
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    try:
        return await outcome
    except asyncio.CancelledError:
        if outcome.cancelled():  # the invocation was cancelled before the answer: so is the app
            task.cancel()
        raise
