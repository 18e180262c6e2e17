"""A worker connection over an in-memory link (``iii._memory_transport``): a client of this
process, connected without a socket.

To the core it is an ordinary :class:`~.connection.WorkerConnection` (same registries, routing,
ownership and teardown); only the transport differs. Frames go out as private copies
(:func:`iii.protocol.copy_frame`, what the JSON round trip would give) straight into the
worker's inbound pipe, bounded like the socket's outbound queue (``outbound_queue_size``
frames; a sender waits while it is full); frames come in as the worker's copies, checked as
decoded text is (:func:`iii.protocol.check`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from iii._memory_transport import Link, Pipe
from iii.protocol import Frame, ProtocolError, check, copy_frame, decode, encode

from ..types import Message
from .connection import BadFrame, Dispatch, WorkerConnection

__all__ = ["MemoryWorkerConnection"]

logger = logging.getLogger("iii_asgi.engine")


async def _no_socket(message: Message) -> None:  # pragma: no cover - never called
    raise RuntimeError("an in-memory worker connection has no socket")


class MemoryWorkerConnection(WorkerConnection):
    """``MemoryWorkerConnection(link, queue_size=...)``: the engine's end of ``link``.

    :meth:`read` replaces :meth:`WorkerConnection.run` (there is no ASGI ``receive``); there is
    no writer task. No peer address (``ip_address`` is ``None``); no binary telemetry frames
    (the client sends telemetry on ``/otel``).
    """

    def __init__(self, link: Link, *, queue_size: int = 64) -> None:
        super().__init__(_no_socket, queue_size=queue_size)
        self.link = link

    def start_writer(self) -> None:
        """Nothing to start: :meth:`send` puts frames into the worker's pipe itself."""

    async def send(self, frame: Frame | Any) -> None:
        """Hand a copy of ``frame`` (a dict) to the worker; waits while its pipe is full; no-op
        once closed. Raises ``TypeError`` when the frame is not JSON-serialisable."""
        if self.alive:
            await self.link.to_worker.put(copy_frame(frame))

    async def send_text(self, text: str) -> None:
        """Hand an encoded frame (a result relayed from a socket worker) to the worker."""
        if self.alive:
            await self.link.to_worker.put(decode(text))

    def close(self) -> None:
        """The worker gets the frames already queued, then the end of the link; idempotent."""
        self.link.to_worker.close_after()

    async def stop_writer(self) -> None:
        """After teardown: drop what the worker did not take, and what it still sends."""
        self.link.close()

    async def read(
        self,
        dispatch: Dispatch,
        bad_frame: BadFrame,
        complete: Callable[[Frame], bool] | None = None,
    ) -> None:
        """Handle the worker's frames in order until it closes the link or is evicted (§1.9).

        ``complete(frame)``: settles an ``invocationresult`` without waiting when it can
        (:meth:`~.invocation.Invoker.complete`); such a result, sent while this loop waits, is
        settled by the worker's send itself (one task hop less, same order)."""
        pipe = self.link.to_engine
        if complete is not None:
            pipe.inline = partial(self._inline, complete)
        try:
            await self._read(pipe, dispatch, bad_frame)
        finally:
            pipe.inline = None

    def _inline(self, complete: Callable[[Frame], bool], frame: Frame) -> bool:
        if self.evicted or frame.get("type") != "invocationresult":
            return False
        try:
            check(frame)
        except ProtocolError:
            return False  # the read loop reports it
        return complete(frame)

    async def _read(self, pipe: Pipe, dispatch: Dispatch, bad_frame: BadFrame) -> None:
        while not self.evicted:
            frame = await pipe.get()
            if frame is None:
                return
            try:
                check(frame)
            except ProtocolError as exc:
                await bad_frame(self, encode(frame), exc)
                continue
            try:
                await dispatch(self, frame, b"")  # no text to relay: results are re-sent
            except Exception:
                logger.exception("error handling %s frame from %r", frame.get("type"), self)
