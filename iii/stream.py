"""Typed helpers for the engine's stream built-in (builtins.md §5–§6), in seed 003's names.

Inputs and results of ``stream::*`` serialise to the exact wire shapes, e.g.::

    from iii.stream import StreamSetInput, StreamUpdateInput, UpdateIncrement, UpdateMerge

    client.trigger({"function_id": "stream::set",
                    "payload": StreamSetInput(stream_name="todo", group_id="inbox",
                                              item_id="t1", data={"title": "milk"})})
    ops = [UpdateIncrement(path="n", by=1), UpdateMerge(value={"done": True})]
    client.trigger({"function_id": "stream::update",
                    "payload": StreamUpdateInput(stream_name="todo", group_id="inbox",
                                                 item_id="t1", ops=ops)})

    client.register_trigger({"type": "stream", "function_id": "todo::changed",
                             "config": StreamTriggerConfig(stream_name="todo")})

``StreamChangeEvent`` is the camelCase payload a ``stream`` trigger handler receives (for
create/update/delete; a ``stream::send`` event has ``event = {"type": "event", "event": {...}}``
and is easiest read as a dict). :class:`IStream` is the interface of a custom stream registered
with :func:`iii.helpers.create_stream` (deprecated upstream: ``FutureWarning``).

Note (builtins.md §5.1): the engine requires an integer ``by``; a float fails the whole call
with ``deserialization_error``.
"""

from __future__ import annotations

import builtins
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

__all__ = [
    "IStream",
    "MergePath",
    "StreamAuthInput",
    "StreamAuthResult",
    "StreamChangeEvent",
    "StreamChangeEventDetail",
    "StreamContext",
    "StreamDeleteInput",
    "StreamDeleteResult",
    "StreamGetInput",
    "StreamJoinLeaveEvent",
    "StreamJoinLeaveTriggerConfig",
    "StreamJoinResult",
    "StreamListGroupsInput",
    "StreamListInput",
    "StreamSetInput",
    "StreamSetResult",
    "StreamTriggerConfig",
    "StreamUpdateInput",
    "StreamUpdateResult",
    "UpdateAppend",
    "UpdateDecrement",
    "UpdateIncrement",
    "UpdateMerge",
    "UpdateOp",
    "UpdateOpError",
    "UpdateRemove",
    "UpdateSet",
]

TData = TypeVar("TData")

#: A merge/append path: one literal first-level key, or a list of literal segments.
MergePath = str | list[str]
#: The auth context a stream socket connection carries (whatever the auth function returned).
StreamContext = Any


def _drop_if(keys: tuple[str, ...], drop: Callable[[Any], bool]) -> Any:
    """A wrap serializer leaving out each of ``keys`` whose value ``drop`` accepts."""

    def serialize(self: BaseModel, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        if isinstance(out, dict):
            for key in keys:
                if drop(out.get(key)):
                    out.pop(key, None)
        return out

    return model_serializer(mode="wrap")(serialize)


def _drop_none(keys: tuple[str, ...]) -> Any:
    """A wrap serializer leaving out ``keys`` when ``None`` (optional wire fields)."""
    return _drop_if(keys, lambda value: value is None)


def _drop_empty(keys: tuple[str, ...]) -> Any:
    """A wrap serializer leaving out ``keys`` when empty or ``None`` (``errors`` of an update
    result, absent from the wire when there are none)."""
    return _drop_if(keys, lambda value: not value)


# -- update ops (§5.1) ---------------------------------------------------------------------------


class UpdateSet(BaseModel):
    """``{"type": "set", "path", "value"}``: set a first-level key (``""``: the root)."""

    type: Literal["set"] = "set"
    path: str
    value: Any = None


class UpdateMerge(BaseModel):
    """``{"type": "merge", "path"?, "value"}``: shallow-merge an object at the root (no path,
    ``""`` or ``[]``) or at a nested path (a string is one key; a list is literal segments)."""

    type: Literal["merge"] = "merge"
    path: MergePath | None = None
    value: Any

    _serialize = _drop_none(("path",))


class UpdateIncrement(BaseModel):
    """``{"type": "increment", "path", "by"}``: add ``by`` (a missing key becomes ``by``)."""

    type: Literal["increment"] = "increment"
    path: str
    by: int | float


class UpdateDecrement(BaseModel):
    """``{"type": "decrement", "path", "by"}``: subtract ``by`` (a missing key becomes
    ``-by``)."""

    type: Literal["decrement"] = "decrement"
    path: str
    by: int | float


class UpdateAppend(BaseModel):
    """``{"type": "append", "path"?, "value"}``: push onto an array, concatenate a string, or
    create ``[value]`` (a string value alone at a single key or the root)."""

    type: Literal["append"] = "append"
    path: MergePath | None = None
    value: Any

    _serialize = _drop_none(("path",))


class UpdateRemove(BaseModel):
    """``{"type": "remove", "path"}``: delete a first-level key (``""``: the root becomes
    null)."""

    type: Literal["remove"] = "remove"
    path: str


#: Any update op, discriminated by ``type``.
UpdateOp = Annotated[
    UpdateSet | UpdateMerge | UpdateIncrement | UpdateDecrement | UpdateAppend | UpdateRemove,
    Field(discriminator="type"),
]


class UpdateOpError(BaseModel):
    """One failed op of an update: ``{op_index, code, message, doc_url}`` (§5.2)."""

    op_index: int
    code: str
    message: str
    doc_url: str | None = None


# -- function inputs and results (§6.1) ----------------------------------------------------------


class StreamGetInput(BaseModel):
    """``stream::get`` input."""

    stream_name: str
    group_id: str
    item_id: str


class StreamSetInput(BaseModel):
    """``stream::set`` input."""

    stream_name: str
    group_id: str
    item_id: str
    data: Any


class StreamDeleteInput(BaseModel):
    """``stream::delete`` input."""

    stream_name: str
    group_id: str
    item_id: str


class StreamListInput(BaseModel):
    """``stream::list`` input."""

    stream_name: str
    group_id: str


class StreamListGroupsInput(BaseModel):
    """``stream::list_groups`` input."""

    stream_name: str


class StreamUpdateInput(BaseModel):
    """``stream::update`` input."""

    stream_name: str
    group_id: str
    item_id: str
    ops: list[UpdateOp]


class StreamSetResult(BaseModel, Generic[TData]):
    """``stream::set`` result: ``{old_value, new_value}``."""

    old_value: TData | None = None
    new_value: TData


class StreamUpdateResult(BaseModel, Generic[TData]):
    """``stream::update`` result: ``{old_value, new_value, errors?}`` (``errors`` is left out
    when empty, as on the wire)."""

    old_value: TData | None = None
    new_value: TData
    errors: list[UpdateOpError] = Field(default_factory=list)

    _serialize = _drop_empty(("errors",))


class StreamDeleteResult(BaseModel):
    """``stream::delete`` result: ``{old_value}``."""

    old_value: Any | None = None


# -- triggers and the stream socket (§6.2–§6.4) --------------------------------------------------


class StreamTriggerConfig(BaseModel):
    """Config of a ``stream`` trigger: ``stream_name`` required; empty or absent ``group_id`` /
    ``item_id`` match everything."""

    stream_name: str
    group_id: str | None = None
    item_id: str | None = None
    condition_function_id: str | None = None


class StreamJoinLeaveTriggerConfig(BaseModel):
    """Config of ``stream:join`` / ``stream:leave`` triggers (the engine ignores it)."""

    condition_function_id: str | None = None


class StreamChangeEventDetail(BaseModel):
    """``event`` of a :class:`StreamChangeEvent`."""

    type: Literal["create", "update", "delete"]
    data: Any


class StreamChangeEvent(BaseModel):
    """The camelCase payload of a ``stream`` trigger (builtins.md §6.2)."""

    type: Literal["stream"] = "stream"
    timestamp: int
    streamName: str
    groupId: str
    id: str | None = None
    event: StreamChangeEventDetail


class StreamJoinLeaveEvent(BaseModel):
    """Payload of ``stream:join`` / ``stream:leave`` handlers (snake_case)."""

    subscription_id: str
    stream_name: str
    group_id: str
    id: str | None = None
    context: Any | None = None


class StreamJoinResult(BaseModel):
    """What a ``stream:join`` handler returns; ``unauthorized=True`` refuses the join."""

    unauthorized: bool


class StreamAuthInput(BaseModel):
    """Input of the stream socket's auth function (one call per upgrade)."""

    headers: dict[str, str]
    path: str
    query_params: dict[str, list[str]]
    addr: str


class StreamAuthResult(BaseModel):
    """Result of the auth function: ``context`` is attached to the connection."""

    context: Any | None = None


# -- custom streams ------------------------------------------------------------------------------


class IStream(ABC, Generic[TData]):
    """A custom stream implementation, registered with :func:`iii.helpers.create_stream`: the
    engine then forwards ``stream::get/set/delete/list/list_groups`` of that stream name to it.

    Deprecated upstream with iii-stream: defining a subclass emits a ``FutureWarning``.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        warnings.warn(
            "IStream is deprecated (iii-stream) and will be removed in an upcoming release",
            FutureWarning,
            stacklevel=3,
        )

    @abstractmethod
    async def get(self, input: StreamGetInput) -> TData | None:
        """The item, or ``None``."""

    @abstractmethod
    async def set(self, input: StreamSetInput) -> StreamSetResult[TData] | None:
        """Store an item; the result's ``old_value`` decides create vs update events."""

    @abstractmethod
    async def delete(self, input: StreamDeleteInput) -> StreamDeleteResult:
        """Remove an item; a non-null ``old_value`` emits a delete event."""

    @abstractmethod
    async def list(self, input: StreamListInput) -> builtins.list[TData]:
        """The group's items."""

    @abstractmethod
    async def list_groups(self, input: StreamListGroupsInput) -> builtins.list[str]:
        """The stream's group ids."""

    @abstractmethod
    async def update(self, input: StreamUpdateInput) -> StreamUpdateResult[TData] | None:
        """Apply update ops (not registered by ``create_stream``, as upstream)."""
