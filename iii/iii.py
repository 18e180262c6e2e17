"""The client under its official 0.25 module path, ``iii.iii`` (sdk_surface.md §2):
``from iii.iii import III, register_worker, TriggerAction`` work as in 0.25, with the other
names 0.25 code imports from this module.

``III`` is our client (:mod:`iii.client`): ``III(url)`` then ``await client.connect()``, or
``register_worker()`` from sync code (docs/sdk.md lists where it differs from 0.25).
"""

from iii import III, FunctionRef, Trigger, TriggerTypeRef, register_worker

from ._wire_models import (
    ActivationWire,
    CallerWire,
    FunctionRegisteredMessage,
    InvocationResultMessage,
    InvokeFunctionMessage,
    ObserverAddedMessage,
    ObserveResultMessage,
    ObserverRemovedMessage,
    ObserverStateChangedMessage,
    RegisterFunctionInput,
    RegisterFunctionMessage,
    RegisterTriggerMessage,
    RegisterTriggerTypeMessage,
    UnobserveMessage,
    UnregisterFunctionMessage,
    UnregisterTriggerMessage,
    UnregisterTriggerTypeMessage,
    WorkerRegisteredMessage,
)
from .channels import Channel, ChannelReader, ChannelWriter, StreamChannelRef
from .context import InvocationContext
from .errors import InvocationError, RegistrationRejectedError
from .format_utils import extract_request_format, extract_response_format
from .http import HttpInvocationConfig
from .iii_constants import (
    DEFAULT_RECONNECTION_CONFIG,
    MAX_QUEUE_SIZE,
    ConnectionStateCallback,
    IIIConnectionState,
    InitOptions,
    OtelConfig,
)
from .observe import ObserveHooks, Observer, ObserverHandle, ObserverOptions, ObserveSource, Target
from .options import resolve_engine_url, resolve_headers
from .protocol import (
    DEFAULT_ENGINE_URL,
    FEATURE_OBSERVE_V1,
    SDK_FEATURES,
    MessageType,
    is_channel_ref,
)
from .remote import RemoteFunctionData, RemoteFunctionHandler, RemoteTriggerTypeData
from .stream import (
    IStream,
    StreamDeleteInput,
    StreamGetInput,
    StreamListGroupsInput,
    StreamListInput,
    StreamSetInput,
)
from .types import (
    RegisterFunctionFormat,
    RegisterTriggerInput,
    RegisterTriggerTypeInput,
    TriggerAction,
    TriggerActionEnqueue,
    TriggerActionVoid,
    TriggerConfig,
    TriggerHandler,
    TriggerRequest,
)

__all__ = [
    "DEFAULT_ENGINE_URL",
    "DEFAULT_RECONNECTION_CONFIG",
    "FEATURE_OBSERVE_V1",
    "III",
    "MAX_QUEUE_SIZE",
    "SDK_FEATURES",
    "ActivationWire",
    "CallerWire",
    "Channel",
    "ChannelReader",
    "ChannelWriter",
    "ConnectionStateCallback",
    "FunctionRef",
    "FunctionRegisteredMessage",
    "HttpInvocationConfig",
    "IIIConnectionState",
    "IStream",
    "InitOptions",
    "InvocationContext",
    "InvocationError",
    "InvocationResultMessage",
    "InvokeFunctionMessage",
    "MessageType",
    "ObserveHooks",
    "ObserveResultMessage",
    "ObserveSource",
    "Observer",
    "ObserverAddedMessage",
    "ObserverHandle",
    "ObserverOptions",
    "ObserverRemovedMessage",
    "ObserverStateChangedMessage",
    "OtelConfig",
    "RegisterFunctionFormat",
    "RegisterFunctionInput",
    "RegisterFunctionMessage",
    "RegisterTriggerInput",
    "RegisterTriggerMessage",
    "RegisterTriggerTypeInput",
    "RegisterTriggerTypeMessage",
    "RegistrationRejectedError",
    "RemoteFunctionData",
    "RemoteFunctionHandler",
    "RemoteTriggerTypeData",
    "StreamChannelRef",
    "StreamDeleteInput",
    "StreamGetInput",
    "StreamListGroupsInput",
    "StreamListInput",
    "StreamSetInput",
    "Target",
    "Trigger",
    "TriggerAction",
    "TriggerActionEnqueue",
    "TriggerActionVoid",
    "TriggerConfig",
    "TriggerHandler",
    "TriggerRequest",
    "TriggerTypeRef",
    "UnobserveMessage",
    "UnregisterFunctionMessage",
    "UnregisterTriggerMessage",
    "UnregisterTriggerTypeMessage",
    "WorkerRegisteredMessage",
    "extract_request_format",
    "extract_response_format",
    "is_channel_ref",
    "register_worker",
    "resolve_engine_url",
    "resolve_headers",
]
