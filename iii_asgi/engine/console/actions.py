"""What the console changes, always through the engine's functions as a worker's call would:
invoking a function (sync, void or enqueue) with the core's invoker, and the built-ins behind
the queue, state and stream pages (``iii::queue::redrive_message``, ``state::set``,
``stream::delete``…), so that triggers fire and the workers' rules apply.

With engine tracing on, each invocation from the console is traced: an ``invoke <function>``
span whose trace the result links to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import InvocationError
from ..core.registry import DEFAULT_NAMESPACE
from ..core.tracing import EngineTracer, traceparent_of, with_function_id

if TYPE_CHECKING:
    from ..core.engine import EngineCore

__all__ = ["MODES", "Actions", "Outcome", "parse_json"]

logger = logging.getLogger("iii_asgi.engine.console")

MODES = ("sync", "void", "enqueue")
#: How long a sync invocation from the console waits for its result (s).
INVOKE_TIMEOUT_S = 60.0


@dataclass
class Outcome:
    """The answer to an action: a result, or an error code and message."""

    ok: bool
    result: Any = None
    code: str = ""
    message: str = ""
    duration_ms: float = 0.0
    trace_id: str | None = None
    note: str = ""


def parse_json(text: str, what: str = "payload") -> Any:
    """The JSON value of a form field (blank: ``null``); raises ``InvocationError``
    ``invalid_json``."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvocationError("invalid_json", f"the {what} is not JSON: {exc}") from None


class Actions:
    """The console's calls into one engine."""

    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self.invoker = core.invoker

    async def invoke(
        self, function_id: str, namespace: str, payload: str, mode: str, queue: str = "default"
    ) -> Outcome:
        """Invoke ``function_id`` with the JSON ``payload``: ``sync`` waits for the result (up
        to 60 s), ``void`` only sends it, ``enqueue`` puts it on ``queue``."""
        started = time.perf_counter()
        namespace = namespace or DEFAULT_NAMESPACE
        span = self.core.tracing.start_invoke(function_id, None)
        trace_id = None
        traceparent = baggage = None
        if span is not None:
            span.set_attribute("iii.invocation.source", "console")
            trace_id = format(span.get_span_context().trace_id, "032x")
            traceparent = traceparent_of(span)
            baggage = with_function_id(None, function_id)
        try:
            data = parse_json(payload)
            if mode == "void":
                call = self._void(function_id, data, namespace, traceparent, baggage, span)
                self.core.spawn(call)
                span = None  # ended by _void
                return Outcome(True, None, trace_id=trace_id, note="sent; the result is dropped")
            if mode == "enqueue":
                receipt = await self.invoker.enqueue(
                    function_id,
                    data,
                    queue or "default",
                    namespace=namespace,
                    traceparent=traceparent,
                    baggage=baggage,
                )
                outcome = Outcome(True, {"messageReceiptId": receipt}, note=f"queued on {queue}")
            else:
                result = await asyncio.wait_for(
                    self.invoker.call(
                        function_id,
                        data,
                        namespace=namespace,
                        traceparent=traceparent,
                        baggage=baggage,
                    ),
                    INVOKE_TIMEOUT_S,
                )
                outcome = Outcome(True, result)
        except InvocationError as exc:
            outcome = Outcome(False, code=exc.code, message=exc.message)
        except asyncio.TimeoutError:
            outcome = Outcome(False, code="timeout", message=f"no result in {INVOKE_TIMEOUT_S} s")
        except Exception as exc:
            logger.exception("console invocation of %s failed", function_id)
            outcome = Outcome(False, code="invocation_failed", message=str(exc))
        if span is not None:
            error = None if outcome.ok else {"code": outcome.code, "message": outcome.message}
            EngineTracer.end(span, error)
        outcome.duration_ms = (time.perf_counter() - started) * 1000
        outcome.trace_id = trace_id
        return outcome

    async def _void(
        self,
        function_id: str,
        data: Any,
        namespace: str,
        traceparent: str | None,
        baggage: str | None,
        span: Any,
    ) -> None:
        error: Any = None
        try:
            await self.invoker.call(
                function_id, data, namespace=namespace, traceparent=traceparent, baggage=baggage
            )
        except InvocationError as exc:
            error = {"code": exc.code, "message": exc.message}
            logger.info("console void call of %s failed: %s", function_id, exc)
        finally:
            if span is not None:
                EngineTracer.end(span, error)

    async def call(self, function_id: str, data: dict[str, Any]) -> Outcome:
        """Call a built-in (``state::set``, ``iii::queue::redrive_message``…) in ``default``."""
        started = time.perf_counter()
        try:
            result = await self.invoker.call(function_id, data)
        except InvocationError as exc:
            outcome = Outcome(False, code=exc.code, message=exc.message)
        else:
            outcome = Outcome(True, result)
        outcome.duration_ms = (time.perf_counter() - started) * 1000
        return outcome
