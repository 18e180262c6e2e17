"""The HTTP port's body budget (issue 13): request body bytes buffered across all requests.

A JSON body is read whole before its function is called, and a non-JSON body queues in the
request channel until the function reads it; without a bound, 32 concurrent 16 MiB JSON POSTs
took 1.8 GB. Every request charges the bytes it holds to one :class:`BodyBudget`
(``EngineConfig.http_body_budget_bytes``) and gives them back when it ends:

* a body with a ``content-length`` reserves all of it before a byte is read
  (:meth:`BodyBudget.reserve`), waiting first come first served while others hold the budget;
  a request waiting holds nothing, so requests cannot wait on each other for ever;
* bytes of unknown length (chunked bodies, a streamed body queued in its channel) are charged
  as they arrive (:meth:`BodyBudget.charge`) and refused when they do not fit.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["BodyBudget"]


class BodyBudget:
    """``limit`` bytes shared by every request of one HTTP port.

    Example::

        budget = BodyBudget(64 * 1024 * 1024)
        await budget.reserve(declared)     # waits; ValueError if it can never fit
        if not budget.charge(len(chunk)):  # no waiting
            ...  # 503
        budget.release(held)               # when the request ends
    """

    __slots__ = ("_waiters", "limit", "peak", "refused", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        #: Highest ``used`` seen, and charges refused (for tests and benchmarks).
        self.peak = 0
        self.refused = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def charge(self, size: int) -> bool:
        """Take ``size`` bytes now (a negative size gives some back); False, taking nothing,
        when they do not fit."""
        used = self.used + size
        if size > 0 and used > self.limit:
            self.refused += 1
            return False
        self._take(size)
        if size < 0:
            self._wake()
        return True

    async def reserve(self, size: int) -> None:
        """Take ``size`` bytes, waiting (first come, first served) until they fit. Raises
        ``ValueError`` when ``size`` exceeds the whole budget."""
        if size > self.limit:
            self.refused += 1
            raise ValueError(f"{size} bytes exceed the body budget of {self.limit}")
        if not self._waiters and self.used + size <= self.limit:
            self._take(size)
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # granted, then cancelled: give it back
            else:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                self._wake()  # it may have been holding up smaller requests behind it
            raise

    def release(self, size: int) -> None:
        """Give back ``size`` bytes taken before, and admit waiters that now fit."""
        self.used -= size
        self._wake()

    def _take(self, size: int) -> None:
        self.used += size
        if self.used > self.peak:
            self.peak = self.used

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            size, waiter = waiters[0]
            if waiter.done():
                waiters.popleft()
                continue
            if self.used + size > self.limit:
                return
            waiters.popleft()
            self._take(size)
            waiter.set_result(None)
