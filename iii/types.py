"""Request, registration and info types (seeds 001/002/004; protocol.md §2).

All are pydantic v2 models that dump to the exact wire shapes; every API that takes one also
accepts the equivalent ``dict``.
"""

from __future__ import annotations

import abc
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = [
    "EnqueueResult",
    "FunctionInfo",
    "RegisterFunctionFormat",
    "RegisterTriggerInput",
    "RegisterTriggerTypeInput",
    "TriggerAction",
    "TriggerActionEnqueue",
    "TriggerActionVoid",
    "TriggerConfig",
    "TriggerHandler",
    "TriggerInfo",
    "TriggerRequest",
    "WorkerInfo",
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


class TriggerConfig(BaseModel):
    """What a trigger-type provider receives for each binding (protocol.md §5.2)."""

    id: str
    function_id: str
    config: Any = None
    metadata: Any = None
    namespace: str | None = None


class TriggerHandler(abc.ABC):
    """Provider side of a custom trigger type (protocol.md §5.2).

    ``register_trigger`` is called for each binding the engine delivers; raising makes the engine
    park the binding and report ``trigger_registration_failed`` to whoever registered it.
    ``unregister_trigger`` receives only the binding ``id`` (``function_id`` is ``""``), so keep
    configs by id. Firing is an ordinary ``trigger_async`` call to ``config.function_id``.
    """

    @abc.abstractmethod
    async def register_trigger(self, config: TriggerConfig) -> None: ...

    @abc.abstractmethod
    async def unregister_trigger(self, config: TriggerConfig) -> None: ...


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
