"""Exceptions raised by the SDK.

Hierarchy::

    Exception
    ├── IIIInvocationError (alias InvocationError)   an invocation failed: .code, .message, ...
    │   ├── IIIForbiddenError                        code "FORBIDDEN" (RBAC denial, protocol §8.3)
    │   └── IIITimeoutError                          code "TIMEOUT" (client-side timeout, §3.5)
    ├── RegistrationRejectedError                    the engine refused this worker (§1.10, §2.6)
    └── ObserveRejection                             an observer was refused (0.25 observe, §10.1)

Error codes are the strings of protocol.md §3.7, e.g. ``function_not_found``,
``invocation_failed``, ``invocation_stopped``, ``enqueue_error``, plus the SDK's own ``TIMEOUT``,
``SHUTDOWN``, ``CONNECTION_LOST`` (the socket dropped while the call was in flight) and
``payload_too_large``. The iii-asgi engine's limits (docs/engine.md, "Limits") add
``WORKER_BACKPRESSURE`` (the target worker cannot take more calls now: its socket queue is full
or it has ``max_inflight_invocations`` in flight; also sent by an SDK worker running four times
its ``max_concurrent_handlers``) and ``FRAME_BUDGET_EXCEEDED`` (the engine's frame memory is
spent); both mean "try again later" and arrive as a plain :class:`IIIInvocationError`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "IIIForbiddenError",
    "IIIInvocationError",
    "IIITimeoutError",
    "InvocationError",
    "ObserveRejection",
    "RegistrationRejectedError",
    "error_from_body",
]


class IIIInvocationError(Exception):
    """An invocation failed.

    Attributes: ``code`` (protocol.md §3.7), ``message``, ``function_id``, ``stacktrace`` (the
    remote traceback text, when the handler raised) and ``invocation_id``. ``str(err)`` is
    ``"CODE: message"``; the stacktrace is never part of it.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        function_id: str | None = None,
        stacktrace: str | None = None,
        invocation_id: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.function_id = function_id
        self.stacktrace = stacktrace
        self.invocation_id = invocation_id


#: The 0.25 SDK's name for :class:`IIIInvocationError`.
InvocationError = IIIInvocationError


class IIIForbiddenError(IIIInvocationError):
    """The engine's RBAC gate denied the invocation (code ``FORBIDDEN``, protocol.md §8.3)."""


class IIITimeoutError(IIIInvocationError):
    """No result arrived within the invocation timeout (code ``TIMEOUT``, protocol.md §3.5)."""


class RegistrationRejectedError(Exception):
    """The engine rejected this worker (``registrationrejected``, protocol.md §1.10, §2.6).

    Fatal: the client stops reconnecting and every later call raises this error.
    """

    def __init__(
        self,
        code: str,
        namespace: str | None = None,
        worker_name: str | None = None,
        owner_worker_id: str | None = None,
    ) -> None:
        detail = f"worker {worker_name!r} " if worker_name else ""
        super().__init__(
            f"{code}: engine rejected {detail}in namespace {namespace or 'default'!r}"
            f" (owner {owner_worker_id or 'unknown'})"
        )
        self.code = code
        self.namespace = namespace
        self.worker_name = worker_name
        self.owner_worker_id = owner_worker_id


class ObserveRejection(Exception):
    """An observer refused, with a machine-readable ``code`` (e.g. ``UNSUPPORTED``,
    ``NOT_OBSERVABLE``) and a ``message``; ``str(err)`` is ``"CODE: message"``.

    0.25 raises it from ``ObserverHandle.ready()`` and lets an ``on_observer_added`` hook raise it
    to refuse an observer (protocol.md §10.1). This SDK does not implement observe yet
    (docs/sdk.md): its :class:`iii.ObserverHandle` reports ``UNSUPPORTED``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


_SUBCLASSES: dict[str, type[IIIInvocationError]] = {
    "FORBIDDEN": IIIForbiddenError,
    "TIMEOUT": IIITimeoutError,
}


def error_from_body(
    body: Any, *, function_id: str | None = None, invocation_id: str | None = None
) -> IIIInvocationError:
    """Build the exception for a wire ErrorBody; a malformed body gives code ``UNKNOWN``."""
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        code = body["code"]
        message = body.get("message")
        stacktrace = body.get("stacktrace")
        return _SUBCLASSES.get(code, IIIInvocationError)(
            code,
            message if isinstance(message, str) else "",
            function_id=function_id,
            stacktrace=stacktrace if isinstance(stacktrace, str) else None,
            invocation_id=invocation_id,
        )
    return IIIInvocationError(
        "UNKNOWN",
        f"malformed error body: {body!r}",
        function_id=function_id,
        invocation_id=invocation_id,
    )


def timeout_error(function_id: str, timeout_ms: int, invocation_id: str | None) -> IIITimeoutError:
    """The client-side timeout error of protocol.md §3.5."""
    return IIITimeoutError(
        "TIMEOUT",
        f"invocation timed out after {timeout_ms}ms",
        function_id=function_id,
        invocation_id=invocation_id,
    )
