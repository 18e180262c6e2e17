"""Polling helpers shared by the SDK and interop tests.

Registrations are fire-and-forget frames, so a call from *another* client may reach the engine
before the registration does; these helpers retry while the engine answers
``function_not_found`` and fail with a clear message when a deadline passes.

The deadlines are safety timeouts, not expectations: they return as soon as the condition holds,
and only a broken test waits them out, so they are generous (a loaded machine can be slow).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import iii
from iii import IIIInvocationError

__all__ = [
    "WAIT",
    "CallInThread",
    "acall_until_found",
    "call_until_found",
    "wait_for",
    "wait_until",
]

#: Default safety timeout (seconds) of the helpers below.
WAIT = 60.0


def wait_for(predicate: Callable[[], Any], timeout: float = WAIT, interval: float = 0.01) -> None:
    """Block until ``predicate()`` is true, checking every ``interval`` seconds;
    ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s")
        time.sleep(interval)


async def wait_until(predicate: Callable[[], Any], timeout: float = WAIT) -> None:
    """Async :func:`wait_for`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s")
        await asyncio.sleep(0.01)


def call_until_found(client: iii.III, request: dict[str, Any], timeout: float = WAIT) -> Any:
    """``client.trigger(request)``, retried while the function is not registered yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.trigger(request)
        except IIIInvocationError as exc:
            if exc.code != "function_not_found" or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


async def acall_until_found(client: iii.III, request: dict[str, Any], timeout: float = WAIT) -> Any:
    """``await client.trigger_async(request)``, retried while the function is not registered."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await client.trigger_async(request)
        except IIIInvocationError as exc:
            if exc.code != "function_not_found" or loop.time() > deadline:
                raise
            await asyncio.sleep(0.02)


class CallInThread:
    """Run ``client.trigger(request)`` on a thread; ``outcome()`` joins it and returns the
    exception the call raised (``AssertionError`` when it hung or succeeded)."""

    def __init__(self, client: iii.III, request: dict[str, Any]) -> None:
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(client, request))
        self.thread.start()

    def _run(self, client: iii.III, request: dict[str, Any]) -> None:
        try:
            call_until_found(client, request)
        except BaseException as exc:
            self.errors.append(exc)

    def outcome(self, timeout: float = WAIT) -> BaseException:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the call hung"
        assert self.errors, "the call did not fail"
        return self.errors[0]


async def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 15) -> Any:
    """``await fetch()`` until ``done(result)``; the last result when ``timeout`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await fetch()
        if done(result) or loop.time() > deadline:
            return result
        await asyncio.sleep(0.05)


async def connected(url: str, **options: Any) -> iii.III:
    """A client of ``url`` with ``InitOptions(**options)``, connected (on this loop)."""
    worker = iii.III(url, iii.InitOptions(**options))
    await worker.connect()
    return worker
