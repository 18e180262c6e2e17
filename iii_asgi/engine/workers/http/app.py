"""The HTTP trigger server as a raw ASGI application (builtins.md §3.4–§3.11).

Per request, in order: the ``Host`` check (400, when allowed hosts apply), CORS preflight,
route match (404 / 405), 413 on a declared oversize body, the body (whole when the
content-type contains ``application/json``, else its first part; bytes charged to the body
budget, 503 when they do not fit), a request slot (``http_concurrency_limit``), global
middleware, the two channels (request body: the engine writes; response: the engine reads),
the condition, the route's middleware, then the call, raced against the response channel
(:mod:`.respond`). ``http_default_timeout_ms`` bounds everything up to the response head (504,
empty body); a client that goes away cancels the wait. Both channels are deleted when the
request ends.

The body arrives before the slot is taken (the real engine reads it after global middleware,
inside its concurrency limit), so clients that send slowly never hold a slot: 1,024 slow
uploads cannot keep a health check waiting. Middleware still never sees the body.

Cost per request is kept low: no task is started for a request whose body arrived whole, the
client is watched for a disconnect only once the request has run for :data:`WATCH_AFTER_S`
(or when a stream starts), and the concurrency limit and the body budget are counters.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

import pydantic_core

from iii.protocol import CHANNEL_CHUNK_SIZE

from ...config.engine import EngineConfig
from ...core.channels import Channel, ChannelStore
from ...core.invocation import Invoker
from ...core.logs import RateLimitedLogger, truncate
from ...types import Message, Receive, Scope, Send
from .budget import BodyBudget
from .calls import outcome, start_call
from .cors import Cors
from .hosts import allowed_hosts
from .request import headers_of, last, put_frames, query_of, queued_bytes
from .request import json_body as parse_json
from .respond import RETRY_AFTER, Responder
from .responses import Headers, envelope, result_headers, send_bytes, send_json, status_code
from .routing import Route, Router
from .tracing import traced

__all__ = ["HttpApp"]

logger = logging.getLogger("iii_asgi.engine.http")
_bad_requests = RateLimitedLogger(logger)

_NOT_FOUND = envelope("NOT_FOUND", "Not Found")
_CONDITION_NOT_MET = {**envelope("CONDITION_NOT_MET", "Request condition not met"), "skipped": True}
_TOO_LARGE = envelope("PAYLOAD_TOO_LARGE", "Request body too large")
_HOST_NOT_ALLOWED = envelope("HOST_NOT_ALLOWED", "Host not allowed")
_MIDDLEWARE_TIMEOUT = envelope("MIDDLEWARE_TIMEOUT", "Middleware timeout")
_JSON_CT = (b"content-type", b"application/json")

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
        self.hosts = allowed_hosts(config)
        self.timeout_s = config.http_default_timeout_ms / 1000
        self.max_body = config.http_max_body_bytes
        self.budget = BodyBudget(config.http_body_budget_bytes)
        self.limit = max(1, config.http_concurrency_limit)
        self.active = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.tracer = invoker.tracer
        self.tracing = invoker.telemetry
        self.middleware = [
            m.function_id
            for m in sorted(config.http_middleware, key=lambda m: m.priority)
            if m.phase == "preHandler"
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # served with lifespan="off"; no WebSocket routes here
        exchange = _Exchange(self, asyncio.get_running_loop(), scope, receive, send)
        tracing = self.tracing
        if self.tracer is None or tracing is None:
            await exchange.run()
        else:  # a SERVER span per request (docs/observability.md)
            await traced(tracing, exchange)

    async def acquire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait for a request slot (``http_concurrency_limit`` in flight), first come first
        served; a released slot is handed over without ``active`` dropping. (The exchange
        takes a free slot itself, without calling this.)"""
        waiter = loop.create_future()
        self.waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled: pass it on
            elif waiter in self.waiting:
                self.waiting.remove(waiter)
            raise

    def release(self) -> None:
        waiting = self.waiting
        while waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1


class _Exchange(Responder):
    """One request/response."""

    __slots__ = (
        "app",
        "baggage",
        "body_read",
        "charged",
        "cors_headers",
        "deadline",
        "done",
        "in_middleware",
        "loop",
        "reason",
        "receive",
        "receiver",
        "req_channel",
        "reserving",
        "resp_channel",
        "route",
        "scope",
        "send",
        "slotted",
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
        # Why the task was cancelled: timeout, gone, too_large, budget.
        self.reason: str | None = None
        self.started = False  # response head sent
        self.done = False
        self.in_middleware = False
        self.charged = 0  # body bytes charged to the budget
        self.reserving = False  # waiting for the body budget
        self.slotted = False  # holds a request slot
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
        headers = headers_of(scope)
        if app.hosts is not None:
            host = last(headers.get("host"))
            if host is not None and not app.hosts(host):
                _bad_requests.warning(
                    "http_host", "HTTP 400: Host %s not allowed", truncate(host, 200)
                )
                await send_json(self.send, 400, _HOST_NOT_ALLOWED)
                return
        if app.tracer is None:  # pass the client's trace context on (protocol.md §3.6)
            self.traceparent = last(headers.get("traceparent"))
            self.baggage = last(headers.get("baggage"))
        if app.cors is not None:
            origin = last(headers.get("origin"))
            if origin is not None:
                wanted = last(headers.get("access-control-request-method"))
                if method == "OPTIONS" and wanted is not None:
                    requested = last(headers.get("access-control-request-headers"))
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
        length = last(headers.get("content-length"))
        declared = int(length) if length is not None and length.isdigit() else None
        if declared is not None and declared > app.max_body:
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
            await self._handle(method, found, headers, declared)
        except asyncio.CancelledError:
            reason = self.reason
            if reason is None:
                raise
            uncancel = getattr(self.task, "uncancel", None)
            if uncancel is not None:
                uncancel()
            if not self.started:
                await self._cancelled(reason)
        except _Abort:
            pass
        finally:
            self.done = True
            self.timer.cancel()
            if self.slotted:
                app.release()
            if self.charged:
                app.budget.release(self.charged)
            if self.req_channel is not None:
                app.channels.delete(self.req_channel.id)
            if self.resp_channel is not None:
                app.channels.delete(self.resp_channel.id)

    async def _cancelled(self, reason: str) -> None:
        """Answer a request cancelled for ``reason`` before its response started."""
        if reason == "timeout" and self.in_middleware:
            await send_json(self.send, 504, _MIDDLEWARE_TIMEOUT, self.cors_headers)
        elif reason == "timeout" and self.reserving:
            await self._over_budget()
        elif reason == "timeout":
            await self._respond(504, [], b"")
        elif reason == "too_large":
            await send_json(self.send, 413, _TOO_LARGE, self.cors_headers)
        elif reason == "budget":
            await self._over_budget()

    async def _over_budget(self) -> None:
        message = "Too many request body bytes in flight; retry later"
        error = envelope("BODY_BUDGET_EXCEEDED", message, with_id=True)
        extra = [*RETRY_AFTER, *self.cors_headers] if self.cors_headers else list(RETRY_AFTER)
        await send_json(self.send, 503, error, extra)

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
        self,
        method: str,
        found: tuple[Route, dict[str, str]],
        headers: dict[str, Any],
        declared: int | None,
    ) -> None:
        app = self.app
        route, path_params = found
        query = query_of(self.scope)
        content_type = last(headers.get("content-type"))
        json_body = content_type is not None and "application/json" in content_type
        data: bytes | bytearray
        if json_body:
            data = await self._read_body(declared)
            self._body_read()
            more = False
        else:
            data, more = await self._first_message()
        if app.active < app.limit and not app.waiting:  # the body is here: a request slot
            app.active += 1
        else:
            await app.acquire(self.loop)
        self.slotted = True
        if app.middleware:
            await self._middlewares(app.middleware, "default", method, path_params, query, headers)
        channels = app.channels
        req = self.req_channel = channels.create()
        req.writer_attached = True  # the engine holds the sender
        resp = self.resp_channel = channels.create(key=req.key)
        resp.reader_attached = True  # the engine holds the receiver
        put_frames(req, data)
        body: Any = None
        raw: str | None = None  # the JSON text of a large body, sent to workers as it is
        if more:  # the receiver reads the rest (with the channel's backpressure), then watches
            self.receiver = self.loop.create_task(self._receiver(req, len(data)))
            self.receiver.add_done_callback(_quiet)
        else:
            req.finish_writer()
            self._body_read()
            if json_body:
                body, raw = parse_json(data)
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
            met = await self._condition(route, dict(payload), raw)
            if met is False:
                await send_json(self.send, 422, _CONDITION_NOT_MET, self.cors_headers)
                return
        if route.middleware_function_ids:
            await self._middlewares(
                route.middleware_function_ids, route.namespace, method, path_params, query, headers
            )
        payload["request_body"] = req.ref("read")
        payload["response"] = resp.ref("write")
        client = self.scope.get("client")
        if client:  # beyond §3.5: the HTTP peer (the ASGI bridge's ``request.client``)
            payload["client"] = {"host": client[0], "port": client[1]}
        if self.scope.get("scheme", "http") != "http":  # beyond §3.5 too: https
            payload["scheme"] = self.scope["scheme"]
        # The payload is this call's own (the condition got a copy): no copy for a worker in
        # this process.
        call = self._start_call(
            route.function_id, payload, route.namespace, route.metadata, raw, owned=True
        )
        del payload, data, body, raw  # a large body is in the frame now: not held twice
        await self._respond_to(call, resp)

    # -- the request body (charged to the body budget) -----------------------------------------

    async def _read_body(self, declared: int | None) -> bytes | bytearray:
        """The whole request body (JSON requests); 413 past ``http_max_body_bytes``. A
        declared length is reserved from the body budget first (waiting for it); the bytes of
        a chunked body are charged as they come (503 when they do not fit). A body in several
        messages is copied into one buffer as they come (not joined at the end: one copy of a
        large body at once held the event loop for ~10 ms)."""
        budget = self.app.budget
        if declared:
            self.reserving = True
            try:
                await budget.reserve(declared)
            except ValueError:
                await self._over_budget()
                raise _Abort from None
            self.reserving = False
            self.charged = declared
        buffer: bytearray | None = None
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise _Abort
            chunk: bytes = message.get("body", b"")
            start = size
            size += len(chunk)
            if size > self.app.max_body:
                await send_json(self.send, 413, _TOO_LARGE, self.cors_headers)
                raise _Abort
            if size > self.charged and not self._charge(size):
                await self._over_budget()
                raise _Abort
            more = message.get("more_body", False)
            if buffer is None:
                if not more:
                    return chunk  # the whole body in one message: no copy
                buffer = bytearray(declared) if declared else bytearray()
            if declared:
                buffer[start:size] = chunk
            else:
                buffer += chunk
            if not more:
                return buffer

    def _charge(self, total: int) -> bool:
        """Hold ``total`` body bytes in all (more or fewer than now); False when they do not
        fit the budget."""
        if not self.app.budget.charge(total - self.charged):
            return False
        self.charged = total
        return True

    async def _first_message(self) -> tuple[bytes, bool]:
        """The body's first message (the whole body, most of the time) and whether more
        follows; charged to the budget."""
        message = await self.receive()
        if message["type"] != "http.request":
            raise _Abort  # the client is gone already
        chunk: bytes = message.get("body", b"")
        if len(chunk) > self.app.max_body:
            await send_json(self.send, 413, _TOO_LARGE, self.cors_headers)
            raise _Abort
        if chunk and not self._charge(len(chunk)):
            await self._over_budget()
            raise _Abort
        return chunk, message.get("more_body", False)

    async def _receiver(self, channel: Channel | None, size: int = 0) -> None:
        """Copy the rest of the body into ``channel`` (when given), then wait for the client
        to go away and cancel the request if it is still running. The bytes waiting in the
        channel stay charged to the budget."""
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
                if not self._charge(queued_bytes(channel) + len(chunk)):
                    channel.finish_writer()
                    self._cancel("budget")
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

    def _start_call(
        self,
        function_id: str,
        data: Any,
        namespace: str,
        metadata: Any = None,
        raw: str | None = None,
        *,
        owned: bool = False,
    ) -> asyncio.Future[Any]:
        """:func:`start_call` of ``function_id`` with this request's trace context; ``raw``:
        the JSON text of ``data["body"]``. The future resolves as there (read it with
        :func:`outcome`)."""
        return start_call(
            self.app.invoker,
            function_id,
            data,
            namespace,
            metadata,
            self.traceparent,
            self.baggage,
            raw,
            owned,
        )

    async def _condition(self, route: Route, payload: dict[str, Any], raw: str | None) -> Any:
        assert route.condition_function_id is not None
        call = self._start_call(
            route.condition_function_id, payload, route.namespace, route.metadata, raw
        )
        try:
            await call
            return outcome(call)
        except Exception as exc:
            await self._failed(exc)
            raise _Abort from None

    async def _middlewares(
        self,
        function_ids: Iterable[str],
        namespace: str,
        method: str,
        path_params: dict[str, str],
        query: dict[str, Any],
        headers: dict[str, Any],
    ) -> None:
        """Run the middleware ``function_ids`` in order, in ``namespace``, on one request
        description ``{path_params, query_params, headers, method}``."""
        request = {
            "path_params": path_params,
            "query_params": query,
            "headers": headers,
            "method": method,
        }
        for function_id in function_ids:
            await self._middleware(function_id, namespace, request)

    async def _middleware(self, function_id: str, namespace: str, request: Any) -> None:
        data = {"phase": "preHandler", "request": request, "context": {}}
        call = self._start_call(function_id, data, namespace)
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


def _quiet(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("HTTP receiver failed", exc_info=task.exception())
