"""A worker connection over an in-memory link (``iii._memory_transport``): a client of this
process, connected without a socket.

To the core it is an ordinary :class:`~.connection.WorkerConnection` (same registries, routing,
ownership and teardown); only the transport differs. Frames go out as private copies
(:func:`iii.protocol.copy_frame`, what the JSON round trip would give; an invocation whose
data was built for it alone, the HTTP trigger's request, is handed over as it is) straight into the
worker's inbound pipe, bounded like the socket's outbound queue (``outbound_queue_size``
frames; the engine never waits: see :class:`MemoryWorkerConnection`); frames come in as the
worker's copies, checked as decoded text is (:func:`iii.protocol.check`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from iii._memory_transport import Link, Pipe
from iii.protocol import Frame, ProtocolError, check, copy_frame, decode, encode

from ..types import Message
from .connection import (
    BACKPRESSURE,
    FAIR_BATCH,
    BadFrame,
    Dispatch,
    QueuedInvocation,
    WorkerConnection,
)

__all__ = ["MemoryWorkerConnection"]

logger = logging.getLogger("iii_asgi.engine")


async def _no_socket(message: Message) -> None:  # pragma: no cover - never called
    raise RuntimeError("an in-memory worker connection has no socket")


class MemoryWorkerConnection(WorkerConnection):
    """``MemoryWorkerConnection(link, queue_size=...)``: the engine's end of ``link``.

    :meth:`read` replaces :meth:`WorkerConnection.run` (there is no ASGI ``receive``); there is
    no writer task. No peer address (``ip_address`` is ``None``); no binary telemetry frames
    (the client sends telemetry on ``/otel``).

    Bounds, as the socket's outbound queue (docs/engine.md "Limits"), counted in frames (a dict
    has no byte size without encoding it; the engine's frame budget does not apply in memory):
    :meth:`offer` refuses an invocation with ``WORKER_BACKPRESSURE`` while ``queue_size``
    frames wait in the worker's pipe; :meth:`post` drops a worker whose pipe holds twice that.
    Neither ever waits.
    """

    takes_frames = True

    def __init__(self, link: Link, *, queue_size: int = 64, queue_bytes: int = 0) -> None:
        super().__init__(_no_socket, queue_size=queue_size, queue_bytes=queue_bytes)
        self.link = link
        link.to_worker.maxsize = 2 * self.queue_size

    @property
    def queued(self) -> tuple[int, int]:
        """``(frames, 0)`` waiting in the worker's pipe (frames in memory have no byte size)."""
        return len(self.link.to_worker), 0

    def start_writer(self) -> None:
        """Nothing to start: frames go into the worker's pipe at once."""

    def offer(self, invocation: QueuedInvocation) -> tuple[str, str] | None:
        """Hand an invocation to the worker unless ``queue_size`` frames already wait in its
        pipe: ``None`` when handed over, else ``(WORKER_BACKPRESSURE, message)``. The frame is
        ``invocation.frame`` (copied, but for its ``data`` when the invocation owns it:
        :attr:`~.invocation.Invocation.owned`) or, when only its text exists, the decoded
        text."""
        pipe = self.link.to_worker
        if len(pipe) >= self.queue_size:
            return BACKPRESSURE, (
                f"worker {self.display_name} is not taking invocations: {len(pipe)} frames "
                f"already queued to it (outbound_queue_size {self.queue_size})"
            )
        frame = invocation.frame
        text = invocation.text
        invocation.frame = invocation.text = None  # taken: a later stop goes as a frame
        if frame is not None:
            if invocation.owned:  # its data is the call's own; the rest is strings but metadata
                frame = cast(Frame, dict(frame))
                metadata = frame.get("metadata")
                if metadata is not None:
                    frame["metadata"] = copy_frame({"metadata": metadata})["metadata"]
            else:
                frame = copy_frame(frame)
            pipe.put_nowait(frame)
        elif text is not None:
            pipe.put_nowait(decode(text))
        return None

    def post(self, text: str) -> None:
        """Hand an encoded frame (a result relayed from a socket worker, a stop notice) to the
        worker; never waits. Past twice ``queue_size`` waiting frames the worker is dropped."""
        if self.alive and not self._dropped:
            self._put(decode(text))

    async def send(self, frame: Frame | Any) -> None:
        """Hand a copy of ``frame`` (a dict) to the worker; never waits; no-op once closed.
        Raises ``TypeError`` when the frame is not JSON-serialisable."""
        if self.alive and not self._dropped:
            self._put(copy_frame(frame))

    async def send_text(self, text: str) -> None:
        """:meth:`post`."""
        self.post(text)

    def _put(self, frame: Frame) -> None:
        if not self.link.to_worker.put_nowait(frame):
            self._drop_slow_consumer()

    def _drop_slow_consumer(self) -> None:
        self._dropped = True
        logger.warning(
            "dropping %r: it does not take its frames (%d queued)", self, len(self.link.to_worker)
        )
        self.evicted = True
        self.link.close()  # the read loop ends: teardown

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
        handled = 0
        while not self.evicted:
            handled += 1
            if handled == FAIR_BATCH:  # as a socket's read loop: let the others run
                handled = 0
                await asyncio.sleep(0)
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
