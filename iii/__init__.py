"""iii: the Python SDK for the iii engine.

>>> from iii import register_worker
>>> client = register_worker()            # III_URL, else ws://127.0.0.1:49134
>>> client.register_function("math::add", lambda d: d["a"] + d["b"])
>>> client.trigger({"function_id": "math::add", "payload": {"a": 1, "b": 2}})
3
"""

from . import helpers as helpers
from .channels import Channel, ChannelReader, ChannelWriter, StreamChannelRef
from .client import III, FunctionRef, Trigger, TriggerTypeRef, register_worker
from .context import (
    Context,
    InvocationContext,
    Logger,
    current_invocation,
    get_context,
    with_context,
)
from .errors import (
    IIIForbiddenError,
    IIIInvocationError,
    IIITimeoutError,
    InvocationError,
    ObserveRejection,
    RegistrationRejectedError,
)
from .http import (
    ApiRequest,
    ApiResponse,
    HttpAuthApiKey,
    HttpAuthBearer,
    HttpAuthConfig,
    HttpAuthHmac,
    HttpInvocationConfig,
    HttpMethod,
    HttpRequest,
    HttpResponse,
    StreamRequest,
    StreamResponse,
    http,
)
from .iii_constants import ConnectionStateCallback
from .iii_types import MiddlewareFunctionInput
from .observe import (
    Caller,
    Capture,
    Filter,
    Observed,
    ObserveHooks,
    Observer,
    ObserverHandle,
    ObserverOptions,
    ObserverState,
    ObserveSource,
    Target,
)
from .options import (
    IIIConnectionState,
    InitOptions,
    ReconnectionConfig,
    TelemetryOptions,
)
from .protocol import DEFAULT_ENGINE_URL, MessageType
from .stream import IStream
from .types import (
    EnqueueResult,
    FunctionInfo,
    RegisterFunctionFormat,
    RegisterTriggerInput,
    RegisterTriggerTypeInput,
    TriggerAction,
    TriggerActionEnqueue,
    TriggerActionVoid,
    TriggerConfig,
    TriggerHandler,
    TriggerInfo,
    TriggerRequest,
    WorkerInfo,
)

#: The 0.25 name of the client class (``iii.types.IIIClient``).
IIIClient = III

__all__ = [
    "DEFAULT_ENGINE_URL",
    "III",
    "ApiRequest",
    "ApiResponse",
    "Caller",
    "Capture",
    "Channel",
    "ChannelReader",
    "ChannelWriter",
    "ConnectionStateCallback",
    "Context",
    "EnqueueResult",
    "Filter",
    "FunctionInfo",
    "FunctionRef",
    "HttpAuthApiKey",
    "HttpAuthBearer",
    "HttpAuthConfig",
    "HttpAuthHmac",
    "HttpInvocationConfig",
    "HttpMethod",
    "HttpRequest",
    "HttpResponse",
    "IIIClient",
    "IIIConnectionState",
    "IIIForbiddenError",
    "IIIInvocationError",
    "IIITimeoutError",
    "IStream",
    "InitOptions",
    "InvocationContext",
    "InvocationError",
    "Logger",
    "MessageType",
    "MiddlewareFunctionInput",
    "ObserveHooks",
    "ObserveRejection",
    "ObserveSource",
    "Observed",
    "Observer",
    "ObserverHandle",
    "ObserverOptions",
    "ObserverState",
    "ReconnectionConfig",
    "RegisterFunctionFormat",
    "RegisterTriggerInput",
    "RegisterTriggerTypeInput",
    "RegistrationRejectedError",
    "StreamChannelRef",
    "StreamRequest",
    "StreamResponse",
    "Target",
    "TelemetryOptions",
    "Trigger",
    "TriggerAction",
    "TriggerActionEnqueue",
    "TriggerActionVoid",
    "TriggerConfig",
    "TriggerHandler",
    "TriggerInfo",
    "TriggerRequest",
    "TriggerTypeRef",
    "WorkerInfo",
    "current_invocation",
    "get_context",
    "http",
    "register_worker",
    "with_context",
]
