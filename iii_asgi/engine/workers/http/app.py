"""The HTTP trigger server as a raw ASGI application (builtins.md §3.4–§3.11).

Per request, in order: CORS preflight, route match (404 / 405), 413 on a declared oversize body,
global middleware, the two channels (request body: the engine writes; response: the engine
reads), the body (parsed when the content-type contains ``application/json``), the condition,
the route's middleware, then the call, raced against the response channel: a non-null result
before any body frame is a buffered response (§3.7); a body frame first starts a streamed one
(§3.8). ``http_default_timeout_ms`` bounds everything up to the response head (504, empty
body); a client that goes away cancels the wait. Both channels are deleted when the request
ends.

A streamed response ends when the function's writer closes, or — beyond the real engine, which
waits for the writer for ever (§3.8) — once the invocation has finished (returned or failed)
and the writer has then been quiet for :data:`DRAIN_S`: what was written is delivered, then the
body ends. The same applies before the first body frame when the function returned ``null``
after attaching the writer (an empty body with the status and headers it set). A function that
returns ``null`` without ever attaching the writer still gets the 504 (§3.8).

Cost per request is kept low: no task is started for a request whose body arrived whole, the
client is watched for a disconnect only once the request has run for :data:`WATCH_AFTER_S`
(or when a stream starts), and the concurrency limit is a counter.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any
from urllib.parse import parse_qsl

import pydantic_core

from iii.protocol import CHANNEL_CHUNK_SIZE

from ...config.engine import EngineConfig
from ...core.channels import Channel, ChannelStore
from ...core.errors import InvocationError
from ...core.invocation import Invoker
from ...types import Message, Receive, Scope, Send
from .calls import outcome, start_call
from .cors import Cors
from .responses import (
    Headers,
    apply_control,
    buffered,
    envelope,
    result_headers,
    send_bytes,
    send_json,
    status_code,
)
from .routing import Route, Router
from .tracing import traced

__all__ = ["HttpApp"]

logger = logging.getLogger("iii_asgi.engine.http")

_NOT_FOUND = envelope("NOT_FOUND", "Not Found")
_CONDITION_NOT_MET = {**envelope("CONDITION_NOT_MET", "Request condition not met"), "skipped": True}
_TOO_LARGE = envelope("PAYLOAD_TOO_LARGE", "Request body too large")
_MIDDLEWARE_TIMEOUT = envelope("MIDDLEWARE_TIMEOUT", "Middleware timeout")
_JSON_CT = (b"content-type", b"application/json")

#: After the invocation finished, a streamed response ends once its writer has been quiet this
#: long (seconds): frames the function wrote before returning travel on another socket than
#: its result and may arrive after it, late by as much as the worker's event loop stalls (a
#: blocking call in some handler, a busy machine), so this is generous.
DRAIN_S = 1.0
#: A request still running after this long (seconds) starts watching its client for a
#: disconnect; faster ones never pay for a watcher task.
WATCH_AFTER_S = 0.1


class _Abort(Exception):
    """A response was sent before the call: stop processing the request."""


class HttpApp:
    """``HttpApp(router, invoker, channels, config)`` serves the routes of ``router``."""

    def __init__(
        self, router: Router, invoker: Invoker, channels: ChannelStore, config: EngineConfig
    ) -> None:
        self.router = router
        self.invoker = invoker
        self.channels = channels
        self.cors = Cors(config.http_cors) if config.http_cors is not None else None
        self.timeout_s = config.http_default_timeout_ms / 1000
        self.max_body = config.http_max_body_bytes
        self.limit = max(1, config.http_concurrency_limit)
        self.active = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self.tracer = invoker.tracer
        self.middleware = [
            m.function_id
            for m in sorted(config.http_middleware, key=lambda m: m.priority)
            if m.phase == "preHandler"
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # served with lifespan="off"; no WebSocket routes here
        loop = asyncio.get_running_loop()
        if self.active < self.limit and not self._waiting:
            self.active += 1
        else:
            await self._slot(loop)
        try:
            exchange = _Exchange(self, loop, scope, receive, send)
            if self.tracer is None:
                await exchange.run()
            else:  # a SERVER span per request (docs/observability.md)
                await traced(self.tracer, exchange)
        finally:
            self._release()

    async def _slot(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait for a request slot (``http_concurrency_limit`` in flight, first come first
        served); a released slot is handed over without ``active`` dropping."""
        waiter = loop.create_future()
        self._waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot, then cancelled: pass it on
            elif waiter in self._waiting:
                self._waiting.remove(waiter)
            raise

    def _release(self) -> None:
        waiting = self._waiting
        while waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1


def _headers(scope: Scope) -> dict[str, Any]:
    """Lower-case name → value; a repeated header becomes a list; non-UTF-8 values are ``""``."""
    headers: dict[str, Any] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        try:
            value = raw_value.decode()
        except UnicodeDecodeError:
            value = ""
        _add_value(headers, name, value)
    return headers


def _query(scope: Scope) -> dict[str, Any]:
    query: dict[str, Any] = {}
    raw = scope.get("query_string")
    if not raw:
        return query
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        _add_value(query, name, value)
    return query


def _add_value(into: dict[str, Any], name: str, value: str) -> None:
    """One value per name; a repeated name becomes a list in arrival order (builtins.md §3.5)."""
    old = into.get(name)
    if old is None:
        into[name] = value
    elif type(old) is list:
        old.append(value)
    else:
        into[name] = [old, value]


def _last(value: Any) -> str | None:
    last: str | None = value[-1] if type(value) is list else value
    return last


def _frames(channel: Channel, body: bytes) -> None:
    for start in range(0, len(body), CHANNEL_CHUNK_SIZE):
        channel.put_nowait((False, body[start : start + CHANNEL_CHUNK_SIZE]))


class _Exchange:
    """One request/response."""

    __slots__ = (
        "app",
        "baggage",
        "body_read",
        "cors_headers",
        "deadline",
        "done",
        "in_middleware",
        "loop",
        "reason",
        "receive",
        "receiver",
        "req_channel",
        "resp_channel",
        "route",
        "scope",
        "send",
        "started",
        "task",
        "timer",
        "traceparent",
        "watch_wanted",
    )

    def __init__(
        self,
        app: HttpApp,
        loop: asyncio.AbstractEventLoop,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        self.app = app
        self.loop = loop
        self.scope = scope
        self.receive = receive
        self.send = send
        self.cors_headers: Headers | None = None
        self.req_channel: Channel | None = None
        self.resp_channel: Channel | None = None
        self.task: asyncio.Task[Any] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0
        # Reads the rest of a streamed request body, then waits for the client to go away.
        self.receiver: asyncio.Task[None] | None = None
        # Only one reader of ``receive`` at a time: the body first, then the watcher.
        self.body_read = False
        self.watch_wanted = False
        self.reason: str | None = None  # why the task was cancelled: timeout, gone, too_large
        self.started = False  # response head sent
        self.done = False
        self.in_middleware = False
        self.route: Route | None = None
        self.traceparent: str | None = None  # set by traced() when tracing, else the header's
        self.baggage: str | None = None

    # -- entry ---------------------------------------------------------------------------------

    async def run(self) -> None:
        app = self.app
        scope = self.scope
        method: str = scope["method"]
        raw_path = scope.get("raw_path")
        path: str = raw_path.decode("latin-1") if raw_path else scope["path"]
        headers = _headers(scope)
        if app.tracer is None:  # pass the client's trace context on (protocol.md §3.6)
            self.traceparent = _last(headers.get("traceparent"))
            self.baggage = _last(headers.get("baggage"))
        if app.cors is not None:
            origin = _last(headers.get("origin"))
            if origin is not None:
                wanted = _last(headers.get("access-control-request-method"))
                if method == "OPTIONS" and wanted is not None:
                    requested = _last(headers.get("access-control-request-headers"))
                    await send_bytes(self.send, 200, app.cors.preflight(origin, requested), b"")
                    return
                self.cors_headers = app.cors.simple(origin)
        found = app.router.find(method, path)
        if found is None:
            allowed = app.router.allowed(path)
            if allowed:
                await self._respond(405, [(b"allow", ", ".join(allowed).encode())], b"")
            else:
                await send_json(self.send, 404, _NOT_FOUND, self.cors_headers)
            return
        self.route = found[0]
        length = _last(headers.get("content-length"))
        if length is not None and length.isdigit() and int(length) > app.max_body:
            await send_json(self.send, 413, _TOO_LARGE, self.cors_headers)
            return
        loop = self.loop
        self.task = asyncio.current_task(loop)
        self.deadline = loop.time() + app.timeout_s
        if app.timeout_s > WATCH_AFTER_S:
            self.timer = loop.call_later(WATCH_AFTER_S, self._slow)
        else:
            self.timer = loop.call_later(app.timeout_s, self._cancel, "timeout")
        try:
            await self._handle(method, route_found=found, headers=headers)
        except asyncio.CancelledError:
            reason = self.reason
            if reason is None:
                raise
            uncancel = getattr(self.task, "uncancel", None)
            if uncancel is not None:
                uncancel()
            if not self.started:
                if reason == "timeout" and self.in_middleware:
                    await send_json(self.send, 504, _MIDDLEWARE_TIMEOUT, self.cors_headers)
                elif reason == "timeout":
                    await self._respond(504, [], b"")
                elif reason == "too_large":
                    await send_json(self.send, 413, _TOO_LARGE, self.cors_headers)
        except _Abort:
            pass
        finally:
            self.done = True
            self.timer.cancel()
            if self.req_channel is not None:
                app.channels.delete(self.req_channel.id)
            if self.resp_channel is not None:
                app.channels.delete(self.resp_channel.id)

    def _slow(self) -> None:
        """The request outlived :data:`WATCH_AFTER_S`: watch the client, time out the rest."""
        if self.done:
            return
        self._watch()
        self.timer = self.loop.call_at(self.deadline, self._cancel, "timeout")

    def _watch(self) -> None:
        """Start watching the client for a disconnect, unless a receiver already does; while
        the body is still being read (which notices a disconnect itself), once it is read."""
        if self.receiver is not None:
            return
        if not self.body_read:
            self.watch_wanted = True
            return
        self.receiver = self.loop.create_task(self._receiver(None))
        self.receiver.add_done_callback(_quiet)

    def _body_read(self) -> None:
        self.body_read = True
        if self.watch_wanted:
            self._watch()

    def _cancel(self, reason: str) -> None:
        if self.done or self.reason is not None or self.task is None:
            return
        if reason == "timeout" and self.started:
            return
        self.reason = reason
        self.task.cancel()

    # -- pipeline (§3.4) -----------------------------------------------------------------------

    async def _handle(
        self, method: str, route_found: tuple[Route, dict[str, str]], headers: dict[str, Any]
    ) -> None:
        app = self.app
        route, path_params = route_found
        query = _query(self.scope)
        if app.middleware:
            request = {
                "path_params": path_params,
                "query_params": query,
                "headers": headers,
                "method": method,
            }
            for function_id in app.middleware:
                await self._middleware(function_id, "default", request)
        channels = app.channels
        req = self.req_channel = channels.create()
        req.writer_attached = True  # the engine holds the sender
        resp = self.resp_channel = channels.create(key=req.key)
        resp.reader_attached = True  # the engine holds the receiver
        content_type = _last(headers.get("content-type"))
        body: Any = None
        if content_type is not None and "application/json" in content_type:
            data = await self._read_body()
            self._body_read()
            _frames(req, data)
            req.finish_writer()
            if data:
                try:
                    body = pydantic_core.from_json(data)
                except ValueError:
                    body = None
        else:
            await self._first_chunk(req)
        payload: dict[str, Any] = {
            "query_params": query,
            "path_params": path_params,
            "headers": headers,
            "path": route.template,
            "method": method,
            "body": body,
            "trigger": {"type": "http", "path": route.template, "method": route.method},
        }
        if route.condition_function_id is not None:
            met = await self._condition(route, dict(payload))
            if met is False:
                await send_json(self.send, 422, _CONDITION_NOT_MET, self.cors_headers)
                return
        if route.middleware_function_ids:
            request = {
                "path_params": path_params,
                "query_params": query,
                "headers": headers,
                "method": method,
            }
            for function_id in route.middleware_function_ids:
                await self._middleware(function_id, route.namespace, request)
        payload["request_body"] = req.ref("read")
        payload["response"] = resp.ref("write")
        client = self.scope.get("client")
        if client:  # beyond §3.5: the HTTP peer (the ASGI bridge's ``request.client``)
            payload["client"] = {"host": client[0], "port": client[1]}
        if self.scope.get("scheme", "http") != "http":  # beyond §3.5 too: https
            payload["scheme"] = self.scope["scheme"]
        call = await start_call(
            app.invoker,
            route.function_id,
            payload,
            route.namespace,
            route.metadata,
            self.traceparent,
            self.baggage,
        )
        await self._respond_to(call, resp)

    async def _read_body(self) -> bytes:
        """The whole request body (JSON requests); 413 past ``http_max_body_bytes``."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise _Abort
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.app.max_body:
                await send_json(self.send, 413, _TOO_LARGE, self.cors_headers)
                raise _Abort
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _first_chunk(self, channel: Channel) -> None:
        """Copy the body's first message into ``channel``: the whole body, most of the time;
        otherwise a receiver task streams the rest (with the channel's backpressure)."""
        message = await self.receive()
        if message["type"] != "http.request":
            raise _Abort  # the client is gone already
        chunk: bytes = message.get("body", b"")
        if len(chunk) > self.app.max_body:
            await send_json(self.send, 413, _TOO_LARGE, self.cors_headers)
            raise _Abort
        _frames(channel, chunk)
        if message.get("more_body", False):  # the receiver reads the rest, then watches
            self.receiver = self.loop.create_task(self._receiver(channel, len(chunk)))
            self.receiver.add_done_callback(_quiet)
        else:
            channel.finish_writer()
            self._body_read()

    async def _receiver(self, channel: Channel | None, size: int = 0) -> None:
        """Copy the rest of the body into ``channel`` (when given), then wait for the client
        to go away and cancel the request if it is still running."""
        message: Message
        if channel is not None:
            while True:
                message = await self.receive()
                if message["type"] != "http.request":
                    channel.finish_writer()
                    break
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > self.app.max_body:
                    channel.finish_writer()
                    self._cancel("too_large")
                    return
                for start in range(0, len(chunk), CHANNEL_CHUNK_SIZE):
                    if not await channel.put((False, chunk[start : start + CHANNEL_CHUNK_SIZE])):
                        return  # request over, channel deleted
                if not message.get("more_body", False):
                    channel.finish_writer()
                    message = await self.receive()
                    break
        else:
            message = await self.receive()
        while message["type"] != "http.disconnect":
            message = await self.receive()
        self._cancel("gone")

    # -- functions around the handler ----------------------------------------------------------

    async def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, InvocationError):
            await send_json(
                self.send, 500, envelope(exc.code, exc.message, with_id=True), self.cors_headers
            )
        else:
            logger.error("HTTP request failed", exc_info=exc)
            await send_json(
                self.send,
                500,
                envelope("INTERNAL_ERROR", "internal server error", with_id=True),
                self.cors_headers,
            )

    async def _condition(self, route: Route, payload: dict[str, Any]) -> Any:
        assert route.condition_function_id is not None
        call = await start_call(
            self.app.invoker,
            route.condition_function_id,
            payload,
            route.namespace,
            route.metadata,
            self.traceparent,
            self.baggage,
        )
        try:
            await call
            return outcome(call)
        except Exception as exc:
            await self._failed(exc)
            raise _Abort from None

    async def _middleware(self, function_id: str, namespace: str, request: Any) -> None:
        data = {"phase": "preHandler", "request": request, "context": {}}
        call = await start_call(
            self.app.invoker, function_id, data, namespace, None, self.traceparent, self.baggage
        )
        self.in_middleware = True  # a request timeout now is a middleware timeout
        try:
            await asyncio.wait_for(call, self.app.timeout_s)
            result = outcome(call)
        except asyncio.TimeoutError:
            await send_json(self.send, 504, _MIDDLEWARE_TIMEOUT, self.cors_headers)
            raise _Abort from None
        except Exception as exc:
            await self._failed(exc)
            raise _Abort from None
        self.in_middleware = False
        if type(result) is dict and result.get("action") == "respond":
            response = result.get("response")
            if type(response) is not dict:
                response = {}
            headers = response.get("headers")
            extra = result_headers(headers if type(headers) is dict else None)
            extra = [h for h in extra if h[0] != b"content-type"]
            body = pydantic_core.to_json(response.get("body"))
            status = status_code(response.get("status_code"))
            await send_bytes(self.send, status, [_JSON_CT, *extra], body, self.cors_headers)
            raise _Abort

    # -- the response (§3.7, §3.8) -------------------------------------------------------------

    async def _respond(self, status: int, headers: Headers, body: bytes) -> None:
        await send_bytes(self.send, status, headers, body, self.cors_headers)

    async def _respond_to(self, call: asyncio.Future[Any], resp: Channel) -> None:
        call.add_done_callback(resp.wake)
        state: dict[str, Any] = {"status": 200, "headers": {}}
        returned_null = False
        try:
            while True:
                item = resp.get_nowait()
                if item is False:
                    if returned_null and resp.writer_attached:
                        # Finished with the writer open: drain, then an empty body.
                        if not await _readable_within(resp, DRAIN_S):
                            await self._start(state)
                            await self.send({"type": "http.response.body", "body": b""})
                            return
                    elif not returned_null and call.done():
                        try:
                            result = outcome(call)
                        except Exception as exc:
                            await self._failed(exc)
                            return
                        if result is not None:
                            await self._buffered(result)
                            return
                        returned_null = True
                    else:
                        # The call, or (after a null result) a writer that may never come:
                        # the 504 timeout ends that wait (builtins.md §3.8).
                        await resp.readable()
                elif item is None:  # writer closed without a body
                    await self._start(state)
                    await self.send({"type": "http.response.body", "body": b""})
                    return
                elif item[0]:
                    apply_control(item[1], state)
                else:
                    await self._stream(state, item[1], resp, call)
                    return
        finally:
            if not call.done():
                call.cancel()

    async def _buffered(self, result: Any) -> None:
        status, headers, body = buffered(result)
        self.started = True
        await self._respond(status, headers, body)

    async def _start(self, state: dict[str, Any]) -> None:
        assert self.timer is not None
        self.timer.cancel()
        headers: Headers = []
        for name, value in state["headers"].items():
            if type(value) is list:  # a repeated header (set_headers with a list, §3.8)
                headers.extend((name, v) for v in value)
            else:
                headers.append((name, value))
        if self.cors_headers:
            headers.extend(self.cors_headers)
        start = {"type": "http.response.start", "status": state["status"], "headers": headers}
        await self.send(start)
        self.started = True

    async def _stream(
        self, state: dict[str, Any], first: bytes, resp: Channel, call: asyncio.Future[Any]
    ) -> None:
        """Send the body as the writer produces it; end it when the writer closes, when it has
        been quiet for :data:`DRAIN_S` after the invocation finished, or after an idle
        ``http_default_timeout_ms`` (the standalone worker's idle timeout, §3.14)."""
        send = self.send
        await self._start(state)
        self._watch()  # the timeout no longer applies; a client that leaves still ends it
        await send({"type": "http.response.body", "body": first, "more_body": True})
        idle = self.app.timeout_s
        while True:
            item = resp.get_nowait()
            if item is False:
                finished = call.done()
                if not await _readable_within(resp, DRAIN_S if finished else idle):
                    if not finished:
                        logger.warning("response stream idle for %.1f s: ending it", idle)
                    break
            elif item is None:
                break
            elif not item[0]:
                await send({"type": "http.response.body", "body": item[1], "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def _readable_within(channel: Channel, seconds: float) -> bool:
    """Wait until ``channel`` may be readable (or is woken); False after ``seconds``."""
    try:
        await asyncio.wait_for(channel.readable(), seconds)
    except asyncio.TimeoutError:
        return False
    return True


def _quiet(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("HTTP receiver failed", exc_info=task.exception())
