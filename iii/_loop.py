"""The event loop a client runs on: its own thread's or the caller's (DESIGN.md "One event loop").

``register_worker()`` starts a :class:`LoopThread`; ``await client.connect()`` binds the running
loop. :class:`ClientLoop` holds that binding, hops sync callers onto the loop and keeps the tasks
the client starts there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["ClientLoop", "LoopThread", "new_loop"]


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (it comes with ``uvicorn[standard]``), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class LoopThread:
    """An event loop running forever on its own non-daemon thread (sdk_surface §3.1)."""

    def __init__(self) -> None:
        self.loop = new_loop()
        self.thread = threading.Thread(target=self._run, name="iii-loop", daemon=False)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=10)


class ClientLoop:
    """One client's event loop, once bound, and the tasks the client runs on it.

    ``loop`` is ``None`` until :meth:`bind` or :meth:`start_thread`; a client never changes loop.
    """

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: LoopThread | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind ``loop``; raises ``RuntimeError`` when another loop is bound already."""
        if self.loop is None:
            self.loop = loop
        elif self.loop is not loop:
            raise RuntimeError("this III client is bound to another event loop")

    def start_thread(self) -> asyncio.AbstractEventLoop:
        """Bind a new :class:`LoopThread`'s loop; ``RuntimeError`` when a loop is bound."""
        if self.loop is not None:
            raise RuntimeError("this III client already has an event loop")
        self.thread = LoopThread()
        self.loop = self.thread.loop
        return self.loop

    def stop_thread(self) -> None:
        """Stop the owned loop thread, if any (joins it, up to 10 s, from another thread)."""
        if self.thread is not None:
            self.thread.stop()
            self.thread = None

    def on_loop_thread(self) -> bool:
        loop = self.loop
        if loop is None:
            return False
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    def refuse_loop_thread(self, name: str, instead: str) -> None:
        """Raise ``RuntimeError`` when a blocking method is called on the loop's own thread."""
        if self.on_loop_thread():
            raise RuntimeError(
                f"Cannot call sync SDK method {name}() from the event loop thread: it would "
                f"deadlock. Use `await client.{instead}(...)` instead."
            )

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the client's loop: now when on it, else scheduled there."""
        loop = self.loop
        if loop is None or self.on_loop_thread() or not loop.is_running():
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the client cancels on shutdown (loop thread only)."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def cancel_tasks(self) -> None:
        """Cancel the client's running tasks and wait for them."""
        tasks = [t for t in self.tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
