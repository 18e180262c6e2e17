"""Engine-initiated calls for the HTTP trigger (protocol.md §3.4), as futures.

:meth:`Invoker.call` is a coroutine; a request also has to watch its response channel, its
timeout and its client while the call runs, so here the call is a future it can wait on with
the rest. A cancelled future (timeout, client gone, response done) forgets the pending
invocation; the worker is not told (an ASGI app may still run background tasks).

A large JSON request body goes into the ``invokefunction`` frame as the client sent it
(``raw_body``, already validated) instead of being encoded again from its parsed value:
encoding a 16 MiB body took ~80 ms of the event loop, stalling every other request and call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ...core.channels import new_uuid4
from ...core.errors import InvocationError
from ...core.invocation import Invoker
from ...core.registry import CallContext
from ...core.tracing import with_function_id

__all__ = ["outcome", "start_call"]


def start_call(
    invoker: Invoker,
    function_id: str,
    data: Any,
    namespace: str,
    metadata: Any = None,
    traceparent: str | None = None,
    baggage: str | None = None,
    raw_body: str | None = None,
    owned: bool = False,
) -> asyncio.Future[Any]:
    """Send the call; the future resolves to the ``invocationresult`` frame (worker functions)
    or the result (in-process functions). Read it with :func:`outcome`. ``traceparent`` /
    ``baggage`` are the request's trace context (protocol.md §3.6). ``raw_body``: the JSON
    text whose parsed value is ``data["body"]``, sent to a worker as it is. ``owned``: ``data``
    is built for this call alone (:meth:`Invoker.send_call`). Call it on the loop."""
    loop = asyncio.get_running_loop()
    entry = invoker.registry.functions.get((namespace, function_id))
    if entry is None:
        failed: asyncio.Future[Any] = loop.create_future()
        failed.set_exception(InvocationError(*invoker.missing(function_id, namespace)))
        return failed
    inv_id = new_uuid4()
    if entry.in_process or entry.owner is None:
        assert entry.handler is not None
        return asyncio.ensure_future(
            _in_process(entry.handler(CallContext(None, inv_id, metadata), data))
        )
    future: asyncio.Future[Any] = loop.create_future()
    # §3.6: with a trace context, the baggage goes on naming the target
    baggage = with_function_id(baggage, function_id) if traceparent is not None else None
    refused = invoker.send_call(
        entry, inv_id, data, future, metadata, traceparent, baggage, raw_body=raw_body, owned=owned
    )
    if refused is not None:  # the worker cannot take it now (issue 13)
        future.set_exception(InvocationError(*refused))
        return future

    def forget(done: asyncio.Future[Any]) -> None:
        if done.cancelled():  # the response ended (or timed out) first: a late result is dropped
            invoker.stop(inv_id)

    future.add_done_callback(forget)
    return future


class _Result:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


async def _in_process(coro: Any) -> _Result:
    return _Result(await coro)


def outcome(future: asyncio.Future[Any]) -> Any:
    """The result of a finished call; raises :class:`InvocationError` for an error result."""
    done = future.result()
    if type(done) is _Result:
        return done.value
    error = done.get("error")
    if error is not None:
        raise InvocationError(str(error.get("code")), str(error.get("message")))
    return done.get("result")
