"""Typed helpers for the engine's state built-in (builtins.md §4–§5).

Types only; the calls are ordinary triggers::

    from iii.state import StateSetInput, StateTriggerConfig, StateUpdateInput
    from iii.stream import UpdateIncrement

    client.trigger({"function_id": "state::set",
                    "payload": StateSetInput(scope="users", key="u1", value={"visits": 0})})
    client.trigger({"function_id": "state::update",
                    "payload": StateUpdateInput(scope="users", key="u1",
                                                ops=[UpdateIncrement(path="visits", by=1)])})
    client.register_trigger({"type": "state", "function_id": "users::changed",
                             "config": StateTriggerConfig(scope="users")})

Result shapes (§4.1): ``state::set`` → :class:`StateSetResult`; ``state::update`` →
:class:`StateUpdateResult`; ``state::get`` → the value or ``None``; ``state::delete`` → **the
deleted value itself** (not a :class:`StateDeleteResult`, whatever upstream's type suggests);
``state::list`` → a list of values; ``state::list_groups`` → ``{"groups": [...]}``. A ``state``
trigger handler receives :class:`StateEventData`.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from enum import Enum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from .stream import UpdateOp, UpdateOpError, _drop_empty

__all__ = [
    "IState",
    "StateDeleteInput",
    "StateDeleteResult",
    "StateEventData",
    "StateEventType",
    "StateGetInput",
    "StateListGroupsResult",
    "StateListInput",
    "StateSetInput",
    "StateSetResult",
    "StateTriggerConfig",
    "StateUpdateInput",
    "StateUpdateResult",
]

TData = TypeVar("TData")


class StateGetInput(BaseModel):
    """``state::get`` input."""

    scope: str
    key: str


class StateSetInput(BaseModel):
    """``state::set`` input (the engine also accepts ``data`` for ``value``)."""

    scope: str
    key: str
    value: Any


class StateDeleteInput(BaseModel):
    """``state::delete`` input."""

    scope: str
    key: str


class StateListInput(BaseModel):
    """``state::list`` input."""

    scope: str


class StateUpdateInput(BaseModel):
    """``state::update`` input: ops from :mod:`iii.stream` (``UpdateSet``, ``UpdateMerge``...)."""

    scope: str
    key: str
    ops: list[UpdateOp]


class StateSetResult(BaseModel, Generic[TData]):
    """``state::set`` result: ``{old_value, new_value}``."""

    old_value: TData | None = None
    new_value: TData


class StateUpdateResult(BaseModel, Generic[TData]):
    """``state::update`` result: ``{old_value, new_value, errors?}``; ``errors`` is left out
    when empty, as on the wire."""

    old_value: TData | None = None
    new_value: TData
    errors: list[UpdateOpError] = Field(default_factory=list)

    _serialize = _drop_empty(("errors",))


class StateDeleteResult(BaseModel):
    """Upstream's delete result type ``{old_value}``. The engine answers ``state::delete`` with
    the raw value instead (builtins.md §4.1, §15.9); wrap it yourself if you want this."""

    old_value: Any | None = None


class StateListGroupsResult(BaseModel):
    """``state::list_groups`` result: ``{"groups": [sorted scope names]}``."""

    groups: list[str]


class StateEventType(str, Enum):
    """``event_type`` of a state trigger payload."""

    CREATED = "state:created"
    UPDATED = "state:updated"
    DELETED = "state:deleted"


class StateEventData(BaseModel, Generic[TData]):
    """The payload of a ``state`` trigger handler (builtins.md §4.3)."""

    type: Literal["state"] = "state"
    event_type: StateEventType
    scope: str
    key: str
    old_value: TData | None = None
    new_value: TData | None = None


class StateTriggerConfig(BaseModel):
    """Config of a ``state`` trigger: exact ``scope`` / ``key`` filters (absent: any)."""

    scope: str | None = None
    key: str | None = None
    condition_function_id: str | None = None


class IState(ABC, Generic[TData]):
    """The interface of a state store with the engine's semantics (e.g. a test double or an
    adapter of your own)."""

    @abstractmethod
    async def get(self, input: StateGetInput) -> TData | None:
        """The value, or ``None``."""

    @abstractmethod
    async def set(self, input: StateSetInput) -> StateSetResult[TData] | None:
        """Store a value."""

    @abstractmethod
    async def delete(self, input: StateDeleteInput) -> StateDeleteResult:
        """Remove a value."""

    @abstractmethod
    async def list(self, input: StateListInput) -> builtins.list[TData]:
        """The scope's values."""

    @abstractmethod
    async def update(self, input: StateUpdateInput) -> StateUpdateResult[TData] | None:
        """Apply update ops."""
