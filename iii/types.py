"""Request, registration and info types (seeds 001/002/004; protocol.md §2).

All are pydantic v2 models that dump to the exact wire shapes; every API that takes one also
accepts the equivalent ``dict``.

This is also the official 0.25 ``iii.types`` module (sdk_surface.md §2): ``IIIClient`` (our
:class:`iii.III`), ``StreamRequest`` / ``StreamResponse``, ``InternalHttpRequest``, ``Channel``,
``is_channel_ref`` / ``extract_channel_refs`` and the handler records of :mod:`iii.remote`
import from here too.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from ._lazy import lazy_exports
from .channels import Channel, StreamChannelRef, extract_channel_refs
from .http import HttpInvocationConfig, InternalHttpRequest, StreamRequest, StreamResponse
from .protocol import StreamChannelRefDict, is_channel_ref

if TYPE_CHECKING:
    from .client import III as IIIClient
    from .client import Trigger
    from .iii_constants import ConnectionStateCallback
    from .iii_types import RegisterFunctionMessage, RegisterTriggerTypeMessage
    from .remote import (
        Invocation,
        RemoteFunctionData,
        RemoteFunctionHandler,
        RemoteServiceFunctionData,
        RemoteTriggerTypeData,
    )
else:
    # Defined in modules that import this one: resolved on first use (iii._lazy).
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "IIIClient": ("iii", "III"),
            "Trigger": ("iii", "Trigger"),
            "ConnectionStateCallback": ("iii.iii_constants", "ConnectionStateCallback"),
            "RegisterFunctionMessage": ("iii.iii_types", "RegisterFunctionMessage"),
            "RegisterTriggerTypeMessage": ("iii.iii_types", "RegisterTriggerTypeMessage"),
            "Invocation": ("iii.remote", "Invocation"),
            "RemoteFunctionData": ("iii.remote", "RemoteFunctionData"),
            "RemoteFunctionHandler": ("iii.remote", "RemoteFunctionHandler"),
            "RemoteServiceFunctionData": ("iii.remote", "RemoteServiceFunctionData"),
            "RemoteTriggerTypeData": ("iii.remote", "RemoteTriggerTypeData"),
        },
    )

TConfig = TypeVar("TConfig")

__all__ = [
    "Channel",
    "ConnectionStateCallback",
    "EnqueueResult",
    "FunctionInfo",
    "HttpInvocationConfig",
    "IIIClient",
    "InternalHttpRequest",
    "Invocation",
    "RegisterFunctionFormat",
    "RegisterFunctionMessage",
    "RegisterTriggerInput",
    "RegisterTriggerTypeInput",
    "RegisterTriggerTypeMessage",
    "RemoteFunctionData",
    "RemoteFunctionHandler",
    "RemoteServiceFunctionData",
    "RemoteTriggerTypeData",
    "StreamChannelRef",
    "StreamChannelRefDict",
    "StreamRequest",
    "StreamResponse",
    "Trigger",
    "TriggerAction",
    "TriggerActionEnqueue",
    "TriggerActionVoid",
    "TriggerConfig",
    "TriggerHandler",
    "TriggerInfo",
    "TriggerRequest",
    "WorkerInfo",
    "extract_channel_refs",
    "is_channel_ref",
]


class TriggerActionVoid(BaseModel):
    """Fire-and-forget: the engine runs the call and discards the result (protocol.md §3.2)."""

    type: Literal["void"] = "void"


class TriggerActionEnqueue(BaseModel):
    """Route the call through the named queue; the caller gets an :class:`EnqueueResult`."""

    type: Literal["enqueue"] = "enqueue"
    queue: str


class TriggerAction:
    """Factory for the ``action`` of a :class:`TriggerRequest`.

    >>> TriggerAction.Void()
    TriggerActionVoid(type='void')
    >>> TriggerAction.Enqueue(queue="emails").queue
    'emails'
    """

    @staticmethod
    def Void() -> TriggerActionVoid:
        return TriggerActionVoid()

    @staticmethod
    def Enqueue(*, queue: str) -> TriggerActionEnqueue:
        return TriggerActionEnqueue(queue=queue)


class TriggerRequest(BaseModel):
    """An invocation request for ``trigger`` / ``trigger_async``.

    ``timeout_ms`` overrides ``InitOptions.invocation_timeout_ms``; ``namespace`` defaults to the
    worker's namespace (``"default"`` for ``engine::*`` ids, protocol.md §3.1).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    function_id: str
    payload: Any = None
    action: TriggerActionVoid | TriggerActionEnqueue | None = None
    timeout_ms: int | None = Field(default=None, gt=0)
    metadata: Any = None
    namespace: str | None = None
    dispatch: Literal["auto", "remote"] | None = None


class EnqueueResult(BaseModel):
    """The engine's answer to an Enqueue action: ``{"messageReceiptId": "<uuid>"}``."""

    messageReceiptId: str

    def __getitem__(self, key: str) -> Any:
        """``result["messageReceiptId"]`` also works, as with the 0.25 SDK's raw dict."""
        if key != "messageReceiptId":
            raise KeyError(key)
        return self.messageReceiptId


class RegisterFunctionFormat(BaseModel):
    """Structured description of a function's request or response (a JSON Schema dict also
    works wherever this is accepted)."""

    name: str | None = None
    type: str | None = None
    description: str | None = None
    body: list[RegisterFunctionFormat] | None = None
    items: RegisterFunctionFormat | None = None
    required: bool | None = None


class RegisterTriggerInput(BaseModel):
    """``register_trigger`` input: bind ``function_id`` to a trigger of ``type`` (§2.9)."""

    type: str
    function_id: str
    config: Any = None
    metadata: Any = None
    namespace: str | None = None
    trigger_namespace: str | None = None


class RegisterTriggerTypeInput(BaseModel):
    """``register_trigger_type`` input (§2.7). The formats are JSON Schema dicts or models."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str
    description: str = ""
    trigger_request_format: Any = None
    call_request_format: Any = None
    namespace: str | None = None


class TriggerConfig(BaseModel, Generic[TConfig]):
    """What a trigger-type provider receives for each binding (protocol.md §5.2).

    Generic as in 0.25 (``TriggerConfig[MyConfig]`` in annotations); ``config`` stays the raw
    JSON value whatever the parameter, as upstream.
    """

    id: str
    function_id: str
    config: Any = None
    metadata: Any = None
    namespace: str | None = None


class TriggerHandler(abc.ABC, Generic[TConfig]):
    """Provider side of a custom trigger type (protocol.md §5.2); ``TriggerHandler[MyConfig]``
    names the config type, as in 0.25.

    ``register_trigger`` is called for each binding the engine delivers; raising makes the engine
    park the binding and report ``trigger_registration_failed`` to whoever registered it.
    ``unregister_trigger`` receives only the binding ``id`` (``function_id`` is ``""``), so keep
    configs by id. Firing is an ordinary ``trigger_async`` call to ``config.function_id``.
    """

    @abc.abstractmethod
    async def register_trigger(self, config: TriggerConfig[TConfig]) -> None: ...

    @abc.abstractmethod
    async def unregister_trigger(self, config: TriggerConfig[TConfig]) -> None: ...


class FunctionInfo(BaseModel):
    """A function as listed by ``engine::functions::list`` (protocol.md §7.1)."""

    model_config = ConfigDict(extra="allow")

    function_id: str
    namespace: str | None = None
    worker_name: str | None = None
    description: str | None = None
    request_format: Any = Field(
        default=None, validation_alias=AliasChoices("request_format", "request_schema")
    )
    response_format: Any = Field(
        default=None, validation_alias=AliasChoices("response_format", "response_schema")
    )
    metadata: Any = None


class TriggerInfo(BaseModel):
    """A registered trigger (binding) as listed by the engine."""

    model_config = ConfigDict(extra="allow")

    id: str
    trigger_type: str
    function_id: str
    config: Any = None
    metadata: Any = None


class WorkerInfo(BaseModel):
    """A connected worker as listed by ``engine::workers::list`` (protocol.md §7.1)."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str | None = None
    runtime: str | None = None
    version: str | None = None
    os: str | None = None
    ip_address: str | None = None
    status: str = "unknown"
    connected_at_ms: int = 0
    function_count: int = 0
    functions: list[str] = Field(default_factory=list)
    active_invocations: int = 0
    namespace: str | None = None
