"""Calls this worker made that wait for an ``invocationresult`` (protocol.md §3.2).

The caller's future may belong to another thread's loop; :meth:`Pending.settle` completes it
from any thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import IIIInvocationError

__all__ = ["Pending", "PendingCalls"]


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


class PendingCalls(dict[str, Pending]):
    """``{invocation id: Pending}``, shared by the connection (which stamps the generation a
    call went out on) and the invoker (which adds, settles and expires calls)."""

    def fail(self, which: Callable[[Pending], bool], code: str, message: str) -> None:
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
