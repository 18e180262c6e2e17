"""Byte budgets (issue 13): memory held across the engine under one limit, and each holder's
share of it.

A :class:`ByteBudget` is one engine-wide limit: the frame budget of the worker listeners
(``EngineConfig.frame_budget_bytes``: messages being parsed or handled, and frames queued to a
socket), the channel budget (``channel_budget_bytes``: items queued in channels) or the HTTP
port's body budget (``http_body_budget_bytes``, :mod:`iii_asgi.engine.workers.http.budget`). A
:class:`Share` is one holder's account on it (a socket, a channel): the first ``allowance``
bytes it holds are its own and never touch the budget, so a holder with small frames is never
refused because others hold large ones; only what it holds beyond its allowance is borrowed
from the budget. The memory held is therefore at most ``limit`` plus one allowance per holder.

Sizes are counted as ``len()`` of what is held (characters of a JSON text, bytes of a binary
frame): counting costs one addition per frame, nothing is encoded to count it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

__all__ = ["SOCKET_ALLOWANCE", "ByteBudget", "FrameAccount", "Share"]

#: Bytes of frames each worker-listener socket holds without drawing on the frame budget.
SOCKET_ALLOWANCE = 1024 * 1024


class ByteBudget:
    """``limit`` bytes shared by many holders.

    Example::

        budget = ByteBudget(256 * 1024 * 1024)
        if not budget.charge(size):  # no waiting
            ...  # refuse
        await budget.reserve(size)   # waits first come, first served; ValueError if it never fits
        budget.release(size)
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
        if size > 0 and self.used + size > self.limit:
            self.refused += 1
            return False
        self._take(size)
        if size < 0:
            self._wake()
        return True

    def force(self, size: int) -> None:
        """Take ``size`` bytes whatever the limit: for memory that is held already."""
        self._take(size)

    async def reserve(self, size: int) -> None:
        """Take ``size`` bytes, waiting (first come, first served) until they fit. Raises
        ``ValueError`` when ``size`` exceeds the whole budget."""
        if size > self.limit:
            self.refused += 1
            raise ValueError(f"{size} bytes exceed the budget of {self.limit}")
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
                self._wake()  # it may have been holding up smaller ones behind it
            raise

    def release(self, size: int) -> None:
        """Give back ``size`` bytes taken before, and admit waiters that now fit."""
        self.used -= size
        if self._waiters:
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


class Share:
    """One holder's account on ``budget``: ``held`` bytes, of which what exceeds ``allowance``
    is ``borrowed`` from the budget. After :meth:`close` nothing more is taken."""

    __slots__ = ("allowance", "borrowed", "budget", "closed", "held")

    def __init__(self, budget: ByteBudget, allowance: int) -> None:
        self.budget = budget
        self.allowance = allowance
        self.held = 0
        self.borrowed = 0
        self.closed = False

    def charge(self, size: int) -> bool:
        """Hold ``size`` more bytes if they fit in the allowance or the budget; False, taking
        nothing, otherwise (and always once closed)."""
        held = self.held + size
        if held <= self.allowance and not self.closed:
            self.held = held
            return True
        if self.closed:
            return False
        need = held - self.allowance - self.borrowed
        if need > 0:
            if not self.budget.charge(need):
                return False
            self.borrowed += need
        self.held = held
        return True

    def force(self, size: int) -> None:
        """Hold ``size`` more bytes whatever the budget (memory that is held already)."""
        held = self.held + size
        need = held - self.allowance - self.borrowed
        if need > 0:
            self.budget.force(need)
            self.borrowed += need
        self.held = held

    async def reserve(self, size: int) -> None:
        """Hold ``size`` more bytes, waiting for the budget when they do not fit. Raises
        ``ValueError`` when they can never fit."""
        need = self.held + size - self.allowance - self.borrowed
        if need > 0:
            await self.budget.reserve(need)
            self.borrowed += need
        self.held += size
        self._settle()

    def release(self, size: int) -> None:
        """Hold ``size`` fewer bytes; what is no longer borrowed goes back to the budget."""
        if self.closed:
            return
        self.held -= size
        if self.borrowed:
            self._settle()

    def close(self) -> None:
        """Give everything back; later charges fail, later releases change nothing held."""
        self.closed = True
        self.held = 0
        self._settle()

    def _settle(self) -> None:
        surplus = self.borrowed - max(0, self.held - self.allowance)
        if surplus > 0:
            self.borrowed -= surplus
            self.budget.release(surplus)


class FrameAccount(Share):
    """A worker-listener socket's share of the frame budget. ``abort(code, reason)``, set by
    the socket's protocol, sends a Close and drops the connection at once without waiting for
    the peer (a peer that does not read would never take the Close)."""

    __slots__ = ("abort",)

    def __init__(self, budget: ByteBudget, allowance: int) -> None:
        super().__init__(budget, allowance)
        self.abort: Callable[[int, str], None] | None = None
