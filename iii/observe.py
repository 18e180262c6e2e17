"""The names of 0.25's observe API (sdk_surface.md §2; protocol.md §10.1), which this SDK does
not implement yet (docs/sdk.md "Observe").

The types (``ObserveSource``, ``ObserverOptions``, ``Observed``, ``Caller``, ``Target``,
``Capture``, ``Filter``, ``ObserverState``) and :class:`ObserveHooks` are complete, so code that
names them imports and type-checks. Behaviour is what 0.25 does against an engine without
``observe.v1``: an :class:`ObserverHandle` is in state ``error`` with reason ``UNSUPPORTED``,
and its ``ready()`` raises :class:`~iii.errors.ObserveRejection`. :class:`Observer` holds an
observer's fields; delivering to it (``emit`` / ``call``) raises ``NotImplementedError``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypedDict

from typing_extensions import Required

from .errors import ObserveRejection

__all__ = [
    "Caller",
    "Capture",
    "Filter",
    "ObserveHooks",
    "ObserveReason",
    "ObserveSource",
    "Observed",
    "Observer",
    "ObserverHandle",
    "ObserverOptions",
    "ObserverState",
    "Target",
    "TargetRef",
]

#: Parts of a call an observer receives.
Capture = Literal["input", "output", "error", "caller", "metadata"]
#: The life of an observer.
ObserverState = Literal["pending", "active", "suspended", "error", "disposed"]
#: An ``iii-filter`` v1 document (``{}`` matches every call); see :mod:`iii.filter`.
Filter = dict[str, Any]
Delivery = Literal["auto", "owner"]

UNSUPPORTED = "UNSUPPORTED"
_NOT_IMPLEMENTED = "observe (protocol.md §10.1) is not implemented by this SDK yet: docs/sdk.md"


class TargetRef(TypedDict, total=False):
    """A function in a namespace (``namespace`` defaults to the worker's)."""

    function_id: Required[str]
    namespace: str


#: An observer's target: a function id, or ``{function_id, namespace}``.
Target = str | TargetRef


class ObserveReason(TypedDict):
    """Why an observer is in its state: ``{code, message}``."""

    code: str
    message: str


class _CallerParent(TypedDict, total=False):
    worker_id: str
    worker_name: str
    function_id: str
    invocation_id: str


class Caller(_CallerParent, total=False):
    """Who made a call: worker, function and invocation, and one level of ``parent``."""

    parent: _CallerParent


class Observed(TypedDict, total=False):
    """What an observer's target receives (``deliver: "envelope"``); fields outside the
    observer's ``capture`` are absent."""

    observer_id: str
    activation_id: str
    function_id: str
    namespace: str
    invocation_id: str
    status: Literal["success", "error"]
    input: Any
    output: Any
    error: dict[str, Any]
    caller: Caller
    metadata: dict[str, Any]
    started_at_ms: int
    duration_ms: float


class ObserveSource(TypedDict, total=False):
    """What is observed: ``function_id`` (required), ``namespace``, owner ``args``,
    ``filters``, ``on`` (default ``"success"``), ``capture`` (default input, output, caller),
    ``deliver`` (default ``"envelope"``)."""

    function_id: Required[str]
    namespace: str
    args: dict[str, Any]
    filters: Filter
    on: Literal["success", "error", "complete"]
    capture: list[Capture]
    deliver: Literal["envelope", "input", "output"]


class ObserverOptions(TypedDict, total=False):
    """The observer itself: ``id`` (default a UUID), ``max_fires``, ``expires_in_ms``,
    ``max_in_flight`` and ``metadata``."""

    id: str
    max_fires: int
    expires_in_ms: int
    max_in_flight: int
    metadata: dict[str, Any]


ObserveHook = Callable[["Observer"], Awaitable[None] | None]


class ObserveHooks:
    """The ``observe=`` option of 0.25's ``register_function``: ``delivery`` (``"auto"`` /
    ``"owner"``), ``args_format``, ``legacy_trigger_type``, ``allow`` and the
    ``on_observer_added`` / ``on_observer_removed`` callbacks. Keyword arguments, or a subclass
    that sets them as class attributes. Our ``register_function`` has no ``observe=`` yet.
    """

    delivery: Delivery | None = None
    args_format: Any = None
    legacy_trigger_type: str | None = None
    allow: bool | None = None
    on_observer_added: ObserveHook | None = None
    on_observer_removed: ObserveHook | None = None

    _OPTIONS = (
        "delivery",
        "args_format",
        "legacy_trigger_type",
        "allow",
        "on_observer_added",
        "on_observer_removed",
    )

    def __init__(self, **values: Any) -> None:
        """Set the given options; ``TypeError`` for an unknown one."""
        for name, value in values.items():
            if name not in self._OPTIONS:
                raise TypeError(f"ObserveHooks has no option {name!r}")
            setattr(self, name, value)

    @classmethod
    def from_value(cls, value: ObserveHooks | Mapping[str, Any] | None) -> ObserveHooks | None:
        """An instance from what ``observe=`` was given; ``TypeError`` for anything else."""
        if value is None or isinstance(value, ObserveHooks):
            return value
        if isinstance(value, Mapping):
            return cls(**value)
        raise TypeError(f"observe must be an ObserveHooks or a dict, got {type(value).__name__}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(delivery={self.delivery!r}, "
            f"legacy_trigger_type={self.legacy_trigger_type!r}, allow={self.allow!r})"
        )


class Observer:
    """An observer as its function's owner sees it: ``id``, ``function_id``, ``args``,
    ``filters``, ``target``, ``capture``, ``on``, ``legacy``. ``matches(doc)`` evaluates the
    filters (:mod:`iii.filter`); delivering needs observe support and raises
    ``NotImplementedError``."""

    def __init__(
        self,
        id: str,
        function_id: str,
        *,
        args: dict[str, Any] | None = None,
        filters: Filter | None = None,
        target: str = "",
        capture: list[str] | None = None,
        on: str = "success",
        legacy: dict[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.function_id = function_id
        self.args = args or {}
        self.filters = filters or {}
        self.target = target
        self.capture = capture if capture is not None else ["input", "output", "caller"]
        self.on = on
        self.legacy = legacy

    def matches(self, doc: Mapping[str, Any]) -> bool:
        from .filter import compile_filter

        return compile_filter(self.filters).matches(doc)

    def emit(self, event: Any) -> bool:
        raise NotImplementedError(_NOT_IMPLEMENTED)

    def call(self, payload: Any, *, timeout_ms: int | None = None) -> Any:
        raise NotImplementedError(_NOT_IMPLEMENTED)

    async def call_async(self, payload: Any, *, timeout_ms: int | None = None) -> Any:
        raise NotImplementedError(_NOT_IMPLEMENTED)

    def reject(self, code: str, message: str) -> None:
        raise NotImplementedError(_NOT_IMPLEMENTED)

    def to_dict(self) -> dict[str, Any]:
        """The observer's fields as a dict (``legacy`` only when set)."""
        out: dict[str, Any] = {
            "id": self.id,
            "function_id": self.function_id,
            "args": self.args,
            "filters": self.filters,
            "target": self.target,
            "capture": self.capture,
            "on": self.on,
        }
        if self.legacy is not None:
            out["legacy"] = self.legacy
        return out


StateListener = Callable[[ObserverState, ObserveReason | None], Any]


class ObserverHandle:
    """What 0.25's ``iii.observe()`` returns. Here: an observer the engine was never asked for,
    in state ``error`` with reason ``UNSUPPORTED`` (0.25's answer when the engine lacks
    ``observe.v1``): ``ready()`` raises :class:`~iii.errors.ObserveRejection`, ``dispose()``
    moves it to ``disposed``."""

    def __init__(self, id: str | None = None, reason: ObserveReason | None = None) -> None:
        self.id = id or str(uuid.uuid4())
        self._state: ObserverState = "error"
        self._reason: ObserveReason | None = reason or {
            "code": UNSUPPORTED,
            "message": _NOT_IMPLEMENTED,
        }
        self._listeners: list[StateListener] = []

    @property
    def state(self) -> ObserverState:
        return self._state

    @property
    def reason(self) -> ObserveReason | None:
        return self._reason

    def ready(self, timeout: float | None = None) -> None:
        """Raises :class:`~iii.errors.ObserveRejection` with the reason (never active here)."""
        reason = self._reason or {"code": "DISPOSED", "message": "observer disposed"}
        raise ObserveRejection(reason["code"], reason["message"])

    async def ready_async(self) -> None:
        self.ready()

    def on_state_change(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener(state, reason)`` on each change; returns an idempotent ``off``."""
        self._listeners.append(listener)

        def off() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return off

    def dispose(self) -> None:
        """Move to ``disposed`` (idempotent) and tell the listeners."""
        if self._state == "disposed":
            return
        self._state = "disposed"
        for listener in list(self._listeners):
            listener(self._state, self._reason)

    async def dispose_async(self) -> None:
        self.dispose()
