"""The iii worker wire protocol: message types, frame shapes, and the JSON codec.

This one module is shared by the SDK (``iii``) and the embedded engine (``iii_asgi.engine``),
so the two sides cannot drift apart. Source: ``shared/spec/protocol.md`` §1.6 (framing) and §2
(message catalogue).

Frames are plain ``dict`` objects (typed below as ``TypedDict``) discriminated by a lower-case
``type`` field. :func:`encode` writes compact UTF-8 JSON with ``None``-valued optional fields
omitted (the one exception: ``invocationresult.result`` keeps ``null``). :func:`decode` parses one
frame and checks the fields the receiver relies on, raising :class:`ProtocolError` with a clear
reason otherwise; unknown fields are kept and ignored.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import pydantic_core
from typing_extensions import NotRequired, Required

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from ._wire_models import (
        RegisterFunctionInput,
        RegisterFunctionMessage,
        RegisterTriggerMessage,
        RegisterTriggerTypeMessage,
    )
    from .types import (
        RegisterFunctionFormat,
        RegisterTriggerInput,
        RegisterTriggerTypeInput,
        TriggerRequest,
    )
else:
    # The official 0.25 ``iii.protocol`` names: models of modules that import this one.
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            **{
                name: ("iii._wire_models", name)
                for name in (
                    "RegisterFunctionInput",
                    "RegisterFunctionMessage",
                    "RegisterTriggerMessage",
                    "RegisterTriggerTypeMessage",
                )
            },
            **{
                name: ("iii.types", name)
                for name in (
                    "RegisterFunctionFormat",
                    "RegisterTriggerInput",
                    "RegisterTriggerTypeInput",
                    "TriggerRequest",
                )
            },
        },
    )

__all__ = [
    "CHANNEL_CHUNK_SIZE",
    "DEFAULT_ENGINE_URL",
    "FEATURE_LARGE_MESSAGES_V1",
    "FEATURE_LOCAL_DISPATCH_V1",
    "FEATURE_OBSERVE_V1",
    "MAX_MESSAGE_SIZE",
    "SDK_FEATURES",
    "ErrorBody",
    "Frame",
    "InvocationResult",
    "InvokeFunction",
    "MessageType",
    "ProtocolError",
    "RegisterFunctionFormat",
    "RegisterFunctionInput",
    "RegisterFunctionMessage",
    "RegisterTriggerInput",
    "RegisterTriggerMessage",
    "RegisterTriggerTypeInput",
    "RegisterTriggerTypeMessage",
    "StreamChannelRefDict",
    "TriggerActionDict",
    "TriggerRequest",
    "check",
    "copy_frame",
    "decode",
    "encode",
    "error_body",
    "invocation_result",
    "invoke_function",
    "is_channel_ref",
]

DEFAULT_ENGINE_URL = "ws://127.0.0.1:49134"
#: Largest JSON message either side accepts, in bytes (protocol.md §1.6).
MAX_MESSAGE_SIZE = 64 * 1024 * 1024
#: Largest binary frame a ChannelWriter sends, in bytes (protocol.md §6.5).
CHANNEL_CHUNK_SIZE = 64 * 1024

#: Capability names of ``engine::workers::register.features`` / ``workerregistered.features``
#: (protocol.md §10.1).
FEATURE_OBSERVE_V1 = "observe.v1"
FEATURE_LOCAL_DISPATCH_V1 = "local-dispatch.v1"
FEATURE_LARGE_MESSAGES_V1 = "large-messages.v1"
#: What this SDK declares: 64 MiB messages only. 0.25 also declares observe and local
#: dispatch, which this SDK does not implement yet (docs/sdk.md).
SDK_FEATURES: tuple[str, ...] = (FEATURE_LARGE_MESSAGES_V1,)


class MessageType(str, enum.Enum):
    """Every ``type`` value of the worker protocol (protocol.md §2.1 and §10)."""

    WORKER_REGISTERED = "workerregistered"
    REATTACH = "reattach"
    REGISTER_FUNCTION = "registerfunction"
    UNREGISTER_FUNCTION = "unregisterfunction"
    REGISTRATION_REJECTED = "registrationrejected"
    REGISTER_TRIGGER_TYPE = "registertriggertype"
    UNREGISTER_TRIGGER_TYPE = "unregistertriggertype"
    REGISTER_TRIGGER = "registertrigger"
    UNREGISTER_TRIGGER = "unregistertrigger"
    TRIGGER_REGISTRATION_RESULT = "triggerregistrationresult"
    INVOKE_FUNCTION = "invokefunction"
    INVOCATION_RESULT = "invocationresult"
    REGISTER_SERVICE = "registerservice"
    PING = "ping"
    PONG = "pong"
    ERROR = "error"
    FUNCTION_REGISTERED = "functionregistered"
    OBSERVE = "observe"
    UNOBSERVE = "unobserve"
    OBSERVE_RESULT = "observeresult"
    OBSERVER_STATE_CHANGED = "observerstatechanged"
    OBSERVER_ADDED = "observeradded"
    OBSERVER_REMOVED = "observerremoved"
    OBSERVER_ACK = "observerack"
    INVOCATIONS_OBSERVED = "invocationsobserved"
    LOCAL_INVOCATION_STATS = "localinvocationstats"


class ErrorBody(TypedDict):
    """``{"code", "message", "stacktrace"?}`` (protocol.md §2.0)."""

    code: str
    message: str
    stacktrace: NotRequired[str]


class TriggerActionDict(TypedDict, total=False):
    """``{"type": "void"}`` or ``{"type": "enqueue", "queue": name}`` (protocol.md §2.0)."""

    type: Required[Literal["void", "enqueue"]]
    queue: str


class StreamChannelRefDict(TypedDict):
    """A data-channel reference inside a payload (protocol.md §2.0, §6)."""

    channel_id: str
    access_key: str
    direction: Literal["read", "write"]


class InvokeFunction(TypedDict, total=False):
    """``invokefunction`` (protocol.md §2.12). ``data`` absent reads as ``null``."""

    type: Required[Literal["invokefunction"]]
    function_id: Required[str]
    data: Any
    invocation_id: str
    action: TriggerActionDict
    metadata: Any
    namespace: str
    traceparent: str
    baggage: str
    timeout_ms: int


class InvocationResult(TypedDict, total=False):
    """``invocationresult`` (protocol.md §2.13). ``error`` present means failure."""

    type: Required[Literal["invocationresult"]]
    invocation_id: Required[str]
    function_id: str
    result: Any
    error: ErrorBody
    traceparent: str
    baggage: str


Frame = dict[str, Any]


class ProtocolError(ValueError):
    """A frame that cannot be understood.

    ``invocation_id`` is set when the bad frame carried one, so a receiver can still answer the
    caller with an error result instead of leaving it to time out.
    """

    def __init__(self, message: str, *, invocation_id: str | None = None) -> None:
        super().__init__(message)
        self.invocation_id = invocation_id


_STR = (str,)
# Fields a receiver relies on, per message type: name -> (required, accepted types).
_FIELDS: dict[str, dict[str, tuple[bool, tuple[type, ...]]]] = {
    "workerregistered": {"worker_id": (True, _STR), "reattach_token": (False, _STR)},
    "reattach": {"previous_worker_id": (True, _STR), "reattach_token": (False, _STR)},
    "registerfunction": {
        "id": (True, _STR),
        "description": (False, _STR),
        "invocation": (False, (dict,)),
    },
    "unregisterfunction": {"id": (True, _STR)},
    "registrationrejected": {"code": (True, _STR)},
    "registertriggertype": {"id": (True, _STR), "description": (False, _STR)},
    "unregistertriggertype": {"id": (True, _STR)},
    "registertrigger": {
        "id": (True, _STR),
        "trigger_type": (True, _STR),
        "function_id": (True, _STR),
        "namespace": (False, _STR),
        "trigger_namespace": (False, _STR),
    },
    "unregistertrigger": {"id": (True, _STR), "trigger_type": (False, _STR)},
    "triggerregistrationresult": {
        "id": (True, _STR),
        "trigger_type": (True, _STR),
        "function_id": (True, _STR),
        "error": (False, (dict,)),
    },
    "invokefunction": {
        "function_id": (True, _STR),
        "invocation_id": (False, _STR),
        "action": (False, (dict,)),
        "namespace": (False, _STR),
        "traceparent": (False, _STR),
        "baggage": (False, _STR),
    },
    "invocationresult": {
        "invocation_id": (True, _STR),
        "function_id": (False, _STR),
        "error": (False, (dict,)),
    },
    "registerservice": {"id": (True, _STR)},
    "ping": {},
    "pong": {},
    "error": {},
}

KNOWN_TYPES = frozenset(t.value for t in MessageType)


def encode(frame: Mapping[str, Any]) -> str:
    """Serialise a frame as compact UTF-8 JSON text (protocol.md §1.6).

    Raises ``TypeError`` when a value is not JSON-serialisable (pydantic models, dataclasses,
    dates and UUIDs are converted the way pydantic does).
    """
    try:
        return pydantic_core.to_json(frame, by_alias=False).decode()
    except pydantic_core.PydanticSerializationError as exc:
        raise TypeError(f"frame is not JSON-serialisable: {exc}") from None


def copy_frame(frame: Mapping[str, Any]) -> Frame:
    """What :func:`encode` then :func:`decode` would give, without the text: a deep copy of
    ``frame`` made of JSON values (dicts, lists, str, int, float, bool, ``None``), converted as
    :func:`encode` converts (pydantic models, dataclasses, dates, UUIDs, tuples). Strings are
    shared (they are immutable); containers never are, so the receiver may change the copy.
    The in-process transport's frames (``iii._memory_transport``); :func:`check` them on receipt.

    Raises ``TypeError`` when a value is not JSON-serialisable, as :func:`encode` does.
    """
    try:
        copied: Frame = pydantic_core.to_jsonable_python(frame, by_alias=False)
    except pydantic_core.PydanticSerializationError as exc:
        raise TypeError(f"frame is not JSON-serialisable: {exc}") from None
    return copied


def decode(raw: str | bytes | bytearray) -> Frame:
    """Parse and :func:`check` one frame.

    Raises :class:`ProtocolError` on invalid JSON and whatever :func:`check` refuses.
    """
    try:
        frame = pydantic_core.from_json(raw)
    except ValueError as exc:
        raise ProtocolError(f"frame is not valid JSON: {exc}") from None
    return check(frame)


def check(frame: Any) -> Frame:
    """Check one decoded frame in place and return it.

    Unknown ``type`` values are returned as they are (the caller decides to ignore them, §1.6);
    known types are checked against the catalogue of §2 and their null optional fields removed
    (absent). Raises :class:`ProtocolError` for a non-object, a missing ``type``, or a required
    field that is absent or of the wrong type.
    """
    if not isinstance(frame, dict):
        raise ProtocolError(f"frame is a JSON {type(frame).__name__}, not an object")
    kind = frame.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("frame has no string 'type' field")
    fields = _FIELDS.get(kind)
    if fields is None:
        return frame
    for name, (required, types) in fields.items():
        value = frame.get(name)
        if value is None:
            if required:
                raise ProtocolError(
                    f"{kind} frame is missing required field '{name}'",
                    invocation_id=_invocation_id_of(frame),
                )
            frame.pop(name, None)  # a null optional field reads as absent (§2.0)
        elif not isinstance(value, types):
            raise ProtocolError(
                f"{kind} frame field '{name}' must be {types[0].__name__}, "
                f"got {type(value).__name__}",
                invocation_id=_invocation_id_of(frame),
            )
    if kind == "invokefunction":
        _check_action(frame)
    return frame


def _invocation_id_of(frame: Mapping[str, Any]) -> str | None:
    value = frame.get("invocation_id")
    return value if isinstance(value, str) else None


def _check_action(frame: Frame) -> None:
    action = frame.get("action")
    if action is None:
        return
    kind = action.get("type")
    if kind == "void":
        return
    if kind == "enqueue" and isinstance(action.get("queue"), str):
        return
    raise ProtocolError(
        f"invokefunction action must be {{'type':'void'}} or {{'type':'enqueue','queue':str}}, "
        f"got {action!r}",
        invocation_id=_invocation_id_of(frame),
    )


def error_body(code: str, message: str, stacktrace: str | None = None) -> ErrorBody:
    """Build an ErrorBody (§2.0), leaving ``stacktrace`` out when there is none."""
    body: ErrorBody = {"code": code, "message": message}
    if stacktrace:
        body["stacktrace"] = stacktrace
    return body


def invoke_function(
    function_id: str,
    data: Any,
    *,
    invocation_id: str | None = None,
    action: TriggerActionDict | None = None,
    metadata: Any = None,
    namespace: str | None = None,
    traceparent: str | None = None,
    baggage: str | None = None,
    timeout_ms: int | None = None,
) -> InvokeFunction:
    """Build an ``invokefunction`` frame (§2.12); ``None`` fields are left out.

    ``timeout_ms`` (W→E) is an iii-asgi extension: how long the caller waits, so that our engine
    can stop the call at the executor when the caller gives up (docs/engine.md, "Limits"). The
    real engine ignores unknown fields (§1.6)."""
    frame: InvokeFunction = {"type": "invokefunction", "function_id": function_id, "data": data}
    if invocation_id is not None:
        frame["invocation_id"] = invocation_id
    if action is not None:
        frame["action"] = action
    if metadata is not None:
        frame["metadata"] = metadata
    if namespace is not None:
        frame["namespace"] = namespace
    if traceparent is not None:
        frame["traceparent"] = traceparent
    if baggage is not None:
        frame["baggage"] = baggage
    if timeout_ms is not None:
        frame["timeout_ms"] = timeout_ms
    return frame


def invocation_result(
    invocation_id: str,
    function_id: str,
    *,
    result: Any = None,
    error: ErrorBody | None = None,
    traceparent: str | None = None,
    baggage: str | None = None,
) -> InvocationResult:
    """Build an ``invocationresult`` frame (§2.13): ``error`` or ``result`` (kept as null)."""
    frame: InvocationResult = {
        "type": "invocationresult",
        "invocation_id": invocation_id,
        "function_id": function_id,
    }
    if error is not None:
        frame["error"] = error
    else:
        frame["result"] = result
    if traceparent is not None:
        frame["traceparent"] = traceparent
    if baggage is not None:
        frame["baggage"] = baggage
    return frame


def is_channel_ref(value: Any) -> bool:
    """True for a dict shaped like a StreamChannelRef (protocol.md §6.5)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("channel_id"), str)
        and isinstance(value.get("access_key"), str)
        and value.get("direction") in ("read", "write")
    )
