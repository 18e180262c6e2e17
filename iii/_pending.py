"""Calls this worker made that wait for an ``invocationresult`` (protocol.md §3.2).

The caller's future may belong to another thread's loop; :meth:`Pending.settle` completes it
from any thread. A thread blocked in the sync ``trigger()`` waits on a :class:`ThreadPending`
instead: settling it releases a lock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import IIIInvocationError

__all__ = ["Pending", "PendingCalls", "ThreadPending"]


@dataclass
class Pending:
    future: asyncio.Future[Any]  # belongs to the caller's loop, which may be another thread's
    function_id: str
    generation: int | None  # connection the frame went out on; None while queued offline

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        """Complete the caller's future from any thread."""
        loop = self.future.get_loop()
        try:
            same_thread = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_thread = False
        if same_thread:
            _settle(self.future, result, error)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(_settle, self.future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class ThreadPending:
    """A call a blocked thread waits for: :meth:`settle` (from any thread, once) stores the
    outcome and releases the lock :meth:`wait` acquires."""

    __slots__ = ("_error", "_lock", "_result", "_settled", "function_id", "generation")

    def __init__(self, function_id: str) -> None:
        self.function_id = function_id
        self.generation: int | None = None  # as Pending.generation
        self._lock = threading.Lock()
        self._lock.acquire()
        self._settled = False
        self._result: Any = None
        self._error: BaseException | None = None

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        if self._settled:
            return
        self._settled = True
        self._result, self._error = result, error
        self._lock.release()

    def wait(self, timeout: float | None) -> bool:
        """Block until settled (``True``) or ``timeout`` seconds passed (``False``)."""
        return self._lock.acquire(timeout=-1 if timeout is None else timeout)

    def outcome(self) -> Any:
        """The result, or raise the error (once :meth:`wait` returned ``True``)."""
        if self._error is not None:
            raise self._error
        return self._result


class PendingCalls(dict[str, "Pending | ThreadPending"]):
    """``{invocation id: Pending}``, shared by the connection (which stamps the generation a
    call went out on) and the invoker (which adds, settles and expires calls)."""

    def fail(
        self, which: Callable[[Pending | ThreadPending], bool], code: str, message: str
    ) -> None:
        """Fail every call ``which`` selects with an :class:`IIIInvocationError` ``code``."""
        for invocation_id, pending in list(self.items()):
            if which(pending):
                self.pop(invocation_id, None)
                pending.settle(
                    error=IIIInvocationError(
                        code, message, function_id=pending.function_id, invocation_id=invocation_id
                    )
                )

    def fail_all(self, error: BaseException) -> None:
        """Fail every call with ``error`` (the engine refused the worker)."""
        for pending in list(self.values()):
            pending.settle(error=error)
        self.clear()
