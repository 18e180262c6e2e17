"""The official 0.25 ``iii.iii_types`` module: message models, register inputs, trigger actions,
``MiddlewareFunctionInput`` (protocol.md §2, §8.4, §10.1; sdk_surface.md §1b).

Also ``WorkerInfo`` (with ``FunctionInfo`` and ``TriggerInfo``), which seeds 001/002 place here;
0.25 dropped them. ``TriggerAction`` is the *union* of the two action models, as in 0.25; the
factory with ``Void()`` / ``Enqueue(queue=)`` is :class:`iii.TriggerAction`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ._wire_models import (
    DEFAULT_CAPTURE,
    ActivationWire,
    CallerParent,
    CallerWire,
    DroppedReportCount,
    ErrorBody,
    FunctionRegisteredMessage,
    FunctionTargetWire,
    InvocationResultMessage,
    InvocationsObservedMessage,
    InvokeFunctionMessage,
    LegacyTriggerWire,
    LocalInvocationCount,
    LocalInvocationStatsMessage,
    ObserveDescriptor,
    ObservedInvocationWire,
    ObserveMessage,
    ObserverAckMessage,
    ObserverAddedMessage,
    ObserveResultMessage,
    ObserverInfoWire,
    ObserverRemovedMessage,
    ObserverStateChangedMessage,
    ObserveSourceWire,
    RegisterFunctionInput,
    RegisterFunctionMessage,
    RegisterTriggerMessage,
    RegisterTriggerTypeMessage,
    TriggerRegistrationResultMessage,
    UnobserveMessage,
    UnregisterFunctionMessage,
    UnregisterTriggerMessage,
    UnregisterTriggerTypeMessage,
    WorkerRegisteredMessage,
)
from .channels import StreamChannelRef
from .http import HttpInvocationConfig
from .protocol import (
    FEATURE_LARGE_MESSAGES_V1,
    FEATURE_LOCAL_DISPATCH_V1,
    FEATURE_OBSERVE_V1,
    SDK_FEATURES,
    MessageType,
)
from .types import (
    FunctionInfo,
    RegisterFunctionFormat,
    RegisterTriggerInput,
    RegisterTriggerTypeInput,
    TriggerActionEnqueue,
    TriggerActionVoid,
    TriggerInfo,
    TriggerRequest,
    WorkerInfo,
)

__all__ = [
    "DEFAULT_CAPTURE",
    "FEATURE_LARGE_MESSAGES_V1",
    "FEATURE_LOCAL_DISPATCH_V1",
    "FEATURE_OBSERVE_V1",
    "SDK_FEATURES",
    "ActivationWire",
    "CallerParent",
    "CallerWire",
    "DroppedReportCount",
    "ErrorBody",
    "FunctionInfo",
    "FunctionRegisteredMessage",
    "FunctionTargetWire",
    "HttpInvocationConfig",
    "IIIMessage",
    "InvocationResultMessage",
    "InvocationsObservedMessage",
    "InvokeFunctionMessage",
    "LegacyTriggerWire",
    "LocalInvocationCount",
    "LocalInvocationStatsMessage",
    "MessageType",
    "MiddlewareFunctionInput",
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
    "OtelLogEvent",
    "RegisterFunctionFormat",
    "RegisterFunctionInput",
    "RegisterFunctionMessage",
    "RegisterTriggerInput",
    "RegisterTriggerMessage",
    "RegisterTriggerTypeInput",
    "RegisterTriggerTypeMessage",
    "StreamChannelRef",
    "TriggerAction",
    "TriggerActionEnqueue",
    "TriggerActionVoid",
    "TriggerInfo",
    "TriggerRegistrationResultMessage",
    "TriggerRequest",
    "UnobserveMessage",
    "UnregisterFunctionMessage",
    "UnregisterTriggerMessage",
    "UnregisterTriggerTypeMessage",
    "WorkerInfo",
    "WorkerRegisteredMessage",
]

#: The ``action`` of an invocation: enqueue on a named queue, or fire-and-forget.
TriggerAction = TriggerActionEnqueue | TriggerActionVoid

#: Any message model of this module.
IIIMessage = (
    RegisterFunctionMessage
    | UnregisterFunctionMessage
    | InvokeFunctionMessage
    | InvocationResultMessage
    | RegisterTriggerMessage
    | RegisterTriggerTypeMessage
    | UnregisterTriggerMessage
    | UnregisterTriggerTypeMessage
    | TriggerRegistrationResultMessage
    | WorkerRegisteredMessage
    | ObserveMessage
    | UnobserveMessage
    | ObserveResultMessage
    | ObserverStateChangedMessage
    | FunctionRegisteredMessage
    | ObserverAddedMessage
    | ObserverRemovedMessage
    | ObserverAckMessage
    | InvocationsObservedMessage
    | LocalInvocationStatsMessage
)


class MiddlewareFunctionInput(BaseModel):
    """What a listener's ``middleware_function_id`` receives for every invocation it gates
    (protocol.md §8.4): the target ``function_id``, the caller's ``payload``, its ``action``
    (``None`` for a plain call), the session's auth ``context`` (``AuthResult.context``) and the
    target ``namespace`` (``None``: the engine's default). The middleware invokes the target
    itself; its result or error is what the caller gets.
    """

    function_id: str
    payload: dict[str, Any]
    action: TriggerActionEnqueue | TriggerActionVoid | None = None
    context: dict[str, Any]
    namespace: str | None = None


class OtelLogEvent(BaseModel):
    """One log record in the engine's log store (the ``log`` trigger's shape): times in
    nanoseconds since the epoch, OTel severity, body, attributes, trace/span ids, resource."""

    timestamp_unix_nano: int
    observed_timestamp_unix_nano: int
    severity_number: int
    severity_text: str
    body: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    trace_id: str | None = None
    span_id: str | None = None
    resource: dict[str, str] = Field(default_factory=dict)
    service_name: str = ""
    instrumentation_scope_name: str | None = None
    instrumentation_scope_version: str | None = None
