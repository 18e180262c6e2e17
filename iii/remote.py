"""Records of what a worker registered, by their 0.25 names (``iii.types`` /
``iii.engine``): the handler type and the function / trigger-type entries the official client
keeps per registration, plus :class:`Invocation`, a settable pending result.

Our client keeps its own records (``iii.client``); these are for code that names the types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from ._wire_models import RegisterFunctionMessage, RegisterTriggerTypeMessage
from .types import TriggerHandler

__all__ = [
    "Invocation",
    "RemoteFunctionData",
    "RemoteFunctionHandler",
    "RemoteServiceFunctionData",
    "RemoteTriggerTypeData",
]

TOutput = TypeVar("TOutput")

#: A function handler: takes the payload, returns (an awaitable of) the result.
RemoteFunctionHandler = Callable[[Any], Awaitable[Any]]


class RemoteFunctionData(BaseModel):
    """A registered function: its ``registerfunction`` message and handler (``None`` for an
    HTTP-invoked function)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    message: RegisterFunctionMessage
    handler: RemoteFunctionHandler | None = None
    observe: Any = None
    call_sync: Callable[[Any, Any], Any] | None = None


class RemoteServiceFunctionData(BaseModel):
    """A function registered by a service: message and handler."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    message: RegisterFunctionMessage
    handler: RemoteFunctionHandler


class RemoteTriggerTypeData(BaseModel):
    """A trigger type this worker provides: its message and :class:`TriggerHandler`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    message: RegisterTriggerTypeMessage
    handler: TriggerHandler[Any]


class Invocation(Generic[TOutput]):
    """A pending result over an asyncio future: :meth:`resolve` / :meth:`reject` settle it
    once; later calls are ignored."""

    def __init__(self, future: asyncio.Future[TOutput]) -> None:
        self._future = future

    def resolve(self, value: TOutput) -> None:
        if not self._future.done():
            self._future.set_result(value)

    def reject(self, error: BaseException) -> None:
        if not self._future.done():
            self._future.set_exception(error)
