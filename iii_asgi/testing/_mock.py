"""``MockFunction``: a stand-in for another worker's function in a test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from iii import III
from iii.client import FunctionRef

__all__ = ["MockFunction"]

_UNSET: Any = object()


class MockFunction:
    """``function_id`` served by a test's worker, answering like a ``unittest.mock.Mock``::

        charge = MockFunction(client, "payments::charge", return_value={"ok": True})
        ...
        assert charge.calls == [{"amount": 10}]

    Arguments:
        client: the connected :class:`iii.III` client that serves it.
        function_id: the id to stand in for.
        return_value: the result of every call (default ``None``).
        side_effect: an exception (class or instance) to raise; a callable called with the
            payload (its result is the answer; ``return_value`` when it returns the mock's
            ``DEFAULT``); or an iterable of answers, one per call (an exception in it raises).

    ``calls``: the payloads received, in order, as the callers sent them (without the
    ``_caller_worker_id`` the engine adds to object payloads, builtins.md §1.1: that is in
    ``callers``); ``call_count``; ``last_call``. The function is registered at once (this
    returns when the engine has it); ``unregister()`` withdraws it.
    """

    DEFAULT: Any = _UNSET

    def __init__(
        self,
        client: III,
        function_id: str,
        return_value: Any = None,
        *,
        side_effect: Any = None,
    ) -> None:
        self.function_id = function_id
        self.return_value = return_value
        self.side_effect = side_effect
        self.calls: list[Any] = []
        #: The calling worker of each call (``None`` when the engine did not say).
        self.callers: list[str | None] = []
        self._lock = threading.Lock()
        self._effects: Iterator[Any] | None = None
        self._client = client
        self._ref: FunctionRef | None = client.register_function(
            function_id, self._handle, description=f"mock of {function_id}"
        )
        # A round trip: the engine handles a connection's frames in order.
        client.trigger({"function_id": "engine::functions::list", "payload": {}})

    @property
    def call_count(self) -> int:
        return len(self.calls)

    @property
    def last_call(self) -> Any:
        """The payload of the latest call; ``AssertionError`` when there was none."""
        if not self.calls:
            raise AssertionError(f"{self.function_id} was not called")
        return self.calls[-1]

    def assert_called_once_with(self, payload: Any) -> None:
        """``AssertionError`` unless exactly one call came, with ``payload``."""
        if self.calls != [payload]:
            raise AssertionError(
                f"{self.function_id}: expected one call with {payload!r}, got {self.calls!r}"
            )

    def reset(self) -> None:
        """Forget the calls received."""
        with self._lock:
            self.calls.clear()
            self.callers.clear()

    def unregister(self) -> None:
        """Withdraw the function (idempotent)."""
        if self._ref is not None:
            self._ref.unregister()
            self._ref = None

    def _handle(self, data: Any) -> Any:
        caller = None
        if isinstance(data, dict) and "_caller_worker_id" in data:
            data = dict(data)
            caller = data.pop("_caller_worker_id")
        with self._lock:
            self.calls.append(data)
            self.callers.append(caller)
            effect = self._next_effect()
        if isinstance(effect, type) and issubclass(effect, BaseException):
            raise effect()
        if isinstance(effect, BaseException):
            raise effect
        if callable(effect):
            result = effect(data)
            return self.return_value if result is _UNSET else result
        return self.return_value if effect is _UNSET else effect

    def _next_effect(self) -> Any:
        effect = self.side_effect
        if effect is None:
            return _UNSET
        if isinstance(effect, (BaseException, type)) or callable(effect):
            return effect
        if self._effects is None:
            self._effects = iter(effect)
        return next(self._effects)

    def __repr__(self) -> str:
        return f"MockFunction({self.function_id!r}, calls={self.call_count})"
