"""Engine-initiated calls for the HTTP trigger (protocol.md §3.4), as futures.

:meth:`Invoker.call` is a coroutine; a request also has to watch its response channel, its
timeout and its client while the call runs, so here the call is a future it can wait on with
the rest. A cancelled future (timeout, client gone) forgets the pending invocation.

A large JSON request body goes into the ``invokefunction`` frame as the client sent it
(``raw_body``, already validated) instead of being encoded again from its parsed value:
encoding a 16 MiB body took ~80 ms of the event loop, stalling every other request and call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from iii.protocol import encode, invoke_function

from ...core.channels import new_uuid4
from ...core.errors import InvocationError
from ...core.invocation import Invocation, Invoker
from ...core.registry import CallContext
from ...core.tracing import with_function_id

__all__ = ["outcome", "start_call"]

# Stands for the body while the rest of a frame is encoded: unguessable, so no header or query
# value of the request can look like it.
_PLACEHOLDER = f'"iii-raw-body:{new_uuid4()}"'


async def start_call(
    invoker: Invoker,
    function_id: str,
    data: Any,
    namespace: str,
    metadata: Any = None,
    traceparent: str | None = None,
    baggage: str | None = None,
    raw_body: str | None = None,
) -> asyncio.Future[Any]:
    """Send the call; the future resolves to the ``invocationresult`` frame (worker functions)
    or the result (in-process functions). Read it with :func:`outcome`. ``traceparent`` /
    ``baggage`` are the request's trace context (protocol.md §3.6). ``raw_body``: the JSON
    text whose parsed value is ``data["body"]``, sent to a worker as it is."""
    loop = asyncio.get_running_loop()
    entry = invoker.registry.functions.get((namespace, function_id))
    if entry is None:
        failed: asyncio.Future[Any] = loop.create_future()
        failed.set_exception(InvocationError(*invoker.missing(function_id, namespace)))
        return failed
    inv_id = new_uuid4()
    owner = entry.owner
    if entry.in_process or owner is None:
        assert entry.handler is not None
        return asyncio.ensure_future(
            _in_process(entry.handler(CallContext(None, inv_id, metadata), data))
        )
    future: asyncio.Future[Any] = loop.create_future()
    invoker.pending[inv_id] = Invocation(inv_id, function_id, owner, future=future)
    owner.inflight.add(inv_id)

    def forget(done: asyncio.Future[Any]) -> None:
        if done.cancelled() and invoker.pending.pop(inv_id, None) is not None:
            owner.inflight.discard(inv_id)

    future.add_done_callback(forget)
    # §3.6: with a trace context, the baggage goes on naming the target
    baggage = with_function_id(baggage, function_id) if traceparent is not None else None
    if raw_body is not None:
        data = {**data, "body": _PLACEHOLDER[1:-1]}
    frame = invoke_function(
        entry.local_id,  # protocol.md §8.6: without the owner's registration prefix
        data,
        invocation_id=inv_id,
        metadata=metadata,
        traceparent=traceparent,
        baggage=baggage,
    )
    if raw_body is None:
        await owner.send(frame)
    else:
        text = encode(frame)
        at = text.rfind(_PLACEHOLDER)  # the body comes after every client-controlled value
        await owner.send_text(f"{text[:at]}{raw_body}{text[at + len(_PLACEHOLDER) :]}")
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
