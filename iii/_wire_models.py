"""Pydantic models of the worker protocol's messages, for the 0.25 ``iii.iii_types`` /
``iii.protocol`` names (protocol.md §2 and §10.1).

The SDK itself builds frames as plain dicts (:mod:`iii.protocol`); these models are for code that
handles messages as objects, e.g. an RBAC middleware or a test harness. Every message has
``message_type`` (alias ``type``) preset to its :class:`~iii.protocol.MessageType`; dump with
``model_dump(by_alias=True, exclude_none=True)`` for the wire shape. Decoding is lenient as on
the wire: a ``null`` optional field reads as absent, unknown fields are ignored.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .http import HttpInvocationConfig
from .protocol import MessageType
from .types import RegisterFunctionFormat, TriggerActionEnqueue, TriggerActionVoid

__all__ = [
    "DEFAULT_CAPTURE",
    "ActivationWire",
    "CallerParent",
    "CallerWire",
    "DroppedReportCount",
    "ErrorBody",
    "FunctionRegisteredMessage",
    "FunctionTargetWire",
    "InvocationResultMessage",
    "InvocationsObservedMessage",
    "InvokeFunctionMessage",
    "LegacyTriggerWire",
    "LocalInvocationCount",
    "LocalInvocationStatsMessage",
    "ObserveDescriptor",
    "ObserveMessage",
    "ObserveResultMessage",
    "ObserveSourceWire",
    "ObservedInvocationWire",
    "ObserverAckMessage",
    "ObserverAddedMessage",
    "ObserverInfoWire",
    "ObserverRemovedMessage",
    "ObserverStateChangedMessage",
    "RegisterFunctionInput",
    "RegisterFunctionMessage",
    "RegisterTriggerMessage",
    "RegisterTriggerTypeMessage",
    "TriggerRegistrationResultMessage",
    "UnobserveMessage",
    "UnregisterFunctionMessage",
    "UnregisterTriggerMessage",
    "UnregisterTriggerTypeMessage",
    "WorkerRegisteredMessage",
]

#: The fields an observer captures when it names none (protocol.md §10.1).
DEFAULT_CAPTURE: tuple[str, ...] = ("input", "output", "caller")

_Action = TriggerActionEnqueue | TriggerActionVoid


class _Wire(BaseModel):
    """A message or a part of one: ``null`` reads as absent except for ``_keep_null`` fields."""

    model_config = ConfigDict(populate_by_name=True)
    _keep_null: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None or k in cls._keep_null}
        return data


def _type(kind: MessageType) -> Any:
    return Field(default=kind, alias="type")


# -- registration (§2.4–§2.11) ---------------------------------------------------------------------


class _FunctionFields(BaseModel):
    """The fields of a function registration, shared by its input and its message."""

    id: str
    description: str | None = None
    request_format: RegisterFunctionFormat | dict[str, Any] | None = None
    response_format: RegisterFunctionFormat | dict[str, Any] | None = None
    metadata: Any = None
    invocation: HttpInvocationConfig | None = None


class RegisterFunctionInput(_FunctionFields):
    """The older dict form of a function registration: ``id`` plus its optional description,
    formats, metadata and ``invocation`` (an HTTP-invoked function)."""


class ObserveDescriptor(_Wire):
    """``registerfunction.observe`` (§10.1): ``delivery``, ``args_format``,
    ``legacy_trigger_type``, ``allow``."""

    delivery: str | None = None
    args_format: Any = None
    legacy_trigger_type: str | None = None
    allow: bool | None = None


class RegisterFunctionMessage(_Wire, _FunctionFields):
    """``registerfunction`` (§2.4)."""

    observe: ObserveDescriptor | None = None
    message_type: MessageType = _type(MessageType.REGISTER_FUNCTION)


class UnregisterFunctionMessage(_Wire):
    """``unregisterfunction`` (§2.5)."""

    id: str
    message_type: MessageType = _type(MessageType.UNREGISTER_FUNCTION)


class RegisterTriggerTypeMessage(_Wire):
    """``registertriggertype`` (§2.7); the formats are JSON Schema values."""

    id: str
    description: str
    trigger_request_format: Any = None
    call_request_format: Any = None
    namespace: str | None = None
    message_type: MessageType = _type(MessageType.REGISTER_TRIGGER_TYPE)


class UnregisterTriggerTypeMessage(_Wire):
    """``unregistertriggertype`` (§2.8)."""

    id: str
    namespace: str | None = None
    message_type: MessageType = _type(MessageType.UNREGISTER_TRIGGER_TYPE)


class RegisterTriggerMessage(_Wire):
    """``registertrigger`` (§2.9): ``config`` is kept even when ``null``."""

    _keep_null: ClassVar[frozenset[str]] = frozenset({"config"})

    id: str
    trigger_type: str
    function_id: str
    config: Any = None
    metadata: Any = None
    namespace: str | None = None
    trigger_namespace: str | None = None
    message_type: MessageType = _type(MessageType.REGISTER_TRIGGER)


class UnregisterTriggerMessage(_Wire):
    """``unregistertrigger`` (§2.10)."""

    id: str
    trigger_type: str | None = None
    message_type: MessageType = _type(MessageType.UNREGISTER_TRIGGER)


class TriggerRegistrationResultMessage(_Wire):
    """``triggerregistrationresult`` (§2.11): ``error`` is an ErrorBody on failure."""

    id: str
    trigger_type: str
    function_id: str
    result: Any = None
    error: Any = None
    message_type: MessageType = _type(MessageType.TRIGGER_REGISTRATION_RESULT)


class WorkerRegisteredMessage(_Wire):
    """``workerregistered`` (§2.2)."""

    worker_id: str = ""
    reattach_token: str | None = None
    features: list[str] | None = None
    message_type: MessageType = _type(MessageType.WORKER_REGISTERED)


# -- invocation (§2.12, §2.13, §10.1) --------------------------------------------------------------


class ErrorBody(_Wire):
    """``{code, message, stacktrace?}`` (§2.0)."""

    code: str = ""
    message: str = ""
    stacktrace: str | None = None


class CallerParent(_Wire):
    """One level of ``invokefunction.caller`` (§10.1)."""

    worker_id: str | None = None
    worker_name: str | None = None
    function_id: str | None = None
    invocation_id: str | None = None


class CallerWire(CallerParent):
    """``invokefunction.caller``: who made the call, and that handler's own caller."""

    parent: CallerParent | None = None


class ActivationWire(_Wire):
    """``invokefunction.activation``: the observer activation a call delivers (§10.1)."""

    observer_id: str
    activation_id: str | None = None


class InvokeFunctionMessage(_Wire):
    """``invokefunction`` (§2.12); ``data`` is kept even when ``null``."""

    _keep_null: ClassVar[frozenset[str]] = frozenset({"data"})

    function_id: str
    data: Any = None
    metadata: Any = None
    invocation_id: str | None = None
    traceparent: str | None = None
    baggage: str | None = None
    action: _Action | None = None
    namespace: str | None = None
    caller: CallerWire | None = None
    observe_depth: int | None = None
    activation: ActivationWire | None = None
    message_type: MessageType = _type(MessageType.INVOKE_FUNCTION)


class InvocationResultMessage(_Wire):
    """``invocationresult`` (§2.13): ``error`` (an ErrorBody) present means failure."""

    _keep_null: ClassVar[frozenset[str]] = frozenset({"result"})

    invocation_id: str
    function_id: str
    result: Any = None
    error: Any = None
    traceparent: str | None = None
    baggage: str | None = None
    message_type: MessageType = _type(MessageType.INVOCATION_RESULT)


# -- observe (§10.1; this SDK does not speak it yet: docs/sdk.md) ---------------------------------


class ObserveSourceWire(_Wire):
    """``observe.source``: the observed function, its args, filters, capture, on, deliver."""

    function_id: str
    namespace: str | None = None
    args: dict[str, Any] | None = None
    filters: dict[str, Any] | None = None
    capture: list[str] | None = None
    on: str | None = None
    deliver: str | None = None


class FunctionTargetWire(_Wire):
    """``observe.target``: the function an observer invokes."""

    function_id: str
    namespace: str | None = None


class ObserveMessage(_Wire):
    """``observe``: create (or replay, same id) an observer."""

    id: str
    source: ObserveSourceWire
    target: FunctionTargetWire
    metadata: Any = None
    max_fires: int | None = None
    expires_in_ms: int | None = None
    max_in_flight: int | None = None
    message_type: MessageType = _type(MessageType.OBSERVE)


class UnobserveMessage(_Wire):
    """``unobserve``."""

    id: str
    message_type: MessageType = _type(MessageType.UNOBSERVE)


class ObserveResultMessage(_Wire):
    """``observeresult``: the observer's first state, with an error or warnings."""

    id: str
    state: str
    error: ErrorBody | None = None
    warnings: list[str] | None = None
    message_type: MessageType = _type(MessageType.OBSERVE_RESULT)


class ObserverStateChangedMessage(_Wire):
    """``observerstatechanged``."""

    id: str
    state: str
    reason: ErrorBody | None = None
    fires: int = 0
    message_type: MessageType = _type(MessageType.OBSERVER_STATE_CHANGED)


class LegacyTriggerWire(_Wire):
    """``observer.legacy``: the ``register_trigger`` call an observer stands for."""

    _keep_null: ClassVar[frozenset[str]] = frozenset({"config"})

    trigger_type: str
    config: Any = None


class ObserverInfoWire(_Wire):
    """An observer as its function's owner is told about it."""

    id: str = ""
    args: dict[str, Any] = Field(default_factory=dict)
    filters: Any = Field(default_factory=dict)
    target: str = ""
    capture: list[str] = Field(default_factory=lambda: list(DEFAULT_CAPTURE))
    on: str = "success"
    legacy: LegacyTriggerWire | None = None


class FunctionRegisteredMessage(_Wire):
    """``functionregistered``: the ack of ``registerfunction``."""

    id: str = ""
    namespace: str = ""
    revision: int = 0
    local_dispatch: bool = False
    observers: list[ObserverInfoWire] = Field(default_factory=list)
    message_type: MessageType = _type(MessageType.FUNCTION_REGISTERED)


class _ObserverChange(_Wire):
    """What an observer change names: the observed function and its observers' revision."""

    function_id: str = ""
    namespace: str = ""
    revision: int = 0


class ObserverAddedMessage(_ObserverChange):
    """``observeradded`` (answered with ``observerack``)."""

    observer: ObserverInfoWire = Field(default_factory=ObserverInfoWire)
    message_type: MessageType = _type(MessageType.OBSERVER_ADDED)


class ObserverRemovedMessage(_ObserverChange):
    """``observerremoved``."""

    id: str = ""
    message_type: MessageType = _type(MessageType.OBSERVER_REMOVED)


class ObserverAckMessage(_Wire):
    """``observerack``: ``error`` refuses the observer."""

    function_id: str
    namespace: str | None = None
    id: str
    revision: int
    error: ErrorBody | None = None
    message_type: MessageType = _type(MessageType.OBSERVER_ACK)


class ObservedInvocationWire(_Wire):
    """One item of ``invocationsobserved``: a local call observers matched."""

    _keep_null: ClassVar[frozenset[str]] = frozenset({"input", "output", "error", "metadata"})

    function_id: str
    namespace: str | None = None
    invocation_id: str
    matched: list[str] = Field(default_factory=list)
    status: str = "success"
    input: Any = None
    output: Any = None
    error: Any = None
    caller: CallerWire | None = None
    metadata: Any = None
    started_at_ms: int = 0
    duration_ms: float = 0.0
    observe_depth: int = 0
    traceparent: str | None = None
    baggage: str | None = None


class InvocationsObservedMessage(_Wire):
    """``invocationsobserved``."""

    items: list[ObservedInvocationWire] = Field(default_factory=list)
    message_type: MessageType = _type(MessageType.INVOCATIONS_OBSERVED)


class LocalInvocationCount(_Wire):
    """One function's counters in ``localinvocationstats``."""

    function_id: str
    count: int = 0
    errors: int = 0
    duration_ms_sum: float = 0.0


class DroppedReportCount(_Wire):
    """Reports dropped for one function (``BUFFER_FULL`` / ``TOO_LARGE``)."""

    function_id: str
    reason: str
    count: int = 0


class LocalInvocationStatsMessage(_Wire):
    """``localinvocationstats``."""

    window_ms: int = 0
    functions: list[LocalInvocationCount] = Field(default_factory=list)
    dropped_reports: list[DroppedReportCount] = Field(default_factory=list)
    message_type: MessageType = _type(MessageType.LOCAL_INVOCATION_STATS)
