"""The response side of an HTTP trigger call: the race between the function's result and its
response channel (builtins.md §3.7, §3.8), and error answers (§3.9).

A non-null result before any body frame is a buffered response; a body frame first starts a
streamed one. A streamed response ends when the function's writer closes, or — beyond the real
engine, which waits for the writer for ever (§3.8) — once the invocation has finished
(returned or failed) and the writer has then been quiet for :data:`DRAIN_S`: what was written
is delivered, then the body ends. The same applies before the first body frame when the
function returned ``null`` after attaching the writer (an empty body with the status and
headers it set). A function that returns ``null`` without ever attaching the writer still
gets the 504 (§3.8).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ...core.channels import Channel
from ...core.connection import BACKPRESSURE, BUDGET_EXCEEDED
from ...core.errors import InvocationError
from ...core.logs import RateLimitedLogger
from ...types import Send
from .calls import outcome
from .responses import Headers, apply_control, buffered, envelope, send_bytes, send_json

if TYPE_CHECKING:
    from .app import HttpApp

__all__ = ["DRAIN_S", "RETRY_AFTER", "Responder"]

logger = logging.getLogger("iii_asgi.engine.http")
_throttled = RateLimitedLogger(logger)
#: Codes of a worker that cannot take the call now (docs/engine.md "Limits"): 503, retry later.
_UNAVAILABLE = frozenset({BACKPRESSURE, BUDGET_EXCEEDED})
#: The ``retry-after`` header of a 503.
RETRY_AFTER: Headers = [(b"retry-after", b"1")]

#: After the invocation finished, a streamed response ends once its writer has been quiet this
#: long (seconds): frames the function wrote before returning travel on another socket than
#: its result and may arrive after it, late by as much as the worker's event loop stalls (a
#: blocking call in some handler, a busy machine), so this is generous.
DRAIN_S = 1.0


class Responder:
    """The response half of a request (mixed into the exchange, which holds the state)."""

    __slots__ = ("started",)  # response head sent

    app: HttpApp
    send: Send
    cors_headers: Headers | None
    timer: asyncio.TimerHandle | None

    def _watch(self) -> None:
        raise NotImplementedError

    async def _respond(self, status: int, headers: Headers, body: bytes) -> None:
        await send_bytes(self.send, status, headers, body, self.cors_headers)

    async def _failed(self, exc: BaseException) -> None:
        status = 500
        if isinstance(exc, InvocationError):
            error = envelope(exc.code, exc.message, with_id=True)
            if exc.code in _UNAVAILABLE:
                extra = [*RETRY_AFTER, *self.cors_headers] if self.cors_headers else RETRY_AFTER
                await send_json(self.send, 503, error, extra)
                return
        else:
            _throttled.error("http_failed", "HTTP request failed", exc_info=exc)
            error = envelope("INTERNAL_ERROR", "internal server error", with_id=True)
        await send_json(self.send, status, error, self.cors_headers)

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
                        if result is not None:  # buffered (§3.7)
                            status, headers, body = buffered(result)
                            self.started = True
                            await send_bytes(self.send, status, headers, body, self.cors_headers)
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
                        _throttled.warning(
                            "http_stream_idle", "response stream idle for %.1f s: ending it", idle
                        )
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
