"""The seam between the core and a connection's access rules (protocol.md §8).

A connection accepted on a listener with an ``rbac`` block or a ``middleware_function_id`` gets
a :class:`Session` (``WorkerConnection.session``), implemented by the ``iii-worker-manager``
worker (``workers/worker_manager/session.py``); the core calls it at the points §8 names and
never learns how it decides. A connection on a trusted listener has ``session is None``: the
invocation path pays that one check and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from iii.protocol import Frame

    from .connection import WorkerConnection

__all__ = ["Session"]


class Session(Protocol):
    """The access rules of one connection, asked by the core.

    ``prefix`` is the session's ``function_registration_prefix`` (§8.6) or ``None``; the core
    applies it to ``engine::register_trigger`` targets. Registration methods return the frame to
    register (renamed, altered and prefixed as the hooks and the prefix say, a copy when changed)
    or ``None`` when the registration is refused; a refusal is logged, and answered to the worker
    only where §8.5 says so.
    """

    prefix: str | None

    async def intercept(self, conn: WorkerConnection, frame: Frame) -> bool:
        """Gate one W→E ``invokefunction`` before it is routed (§8.3, §8.4): ``True`` when the
        call was answered here (``FORBIDDEN``) or handed to the listener's middleware, whose
        result becomes the reply; ``False`` to route it as usual."""
        ...

    def allows(self, function_id: str, namespace: str) -> bool:
        """The §8.3 predicate for ``function_id`` in ``namespace`` (introspection filters)."""
        ...

    async def register_function(self, conn: WorkerConnection, frame: Frame) -> Frame | None:
        """``registerfunction`` through ``allow_function_registration``, the registration hook
        and the prefix (§8.5, §8.6)."""
        ...

    async def register_trigger(self, conn: WorkerConnection, frame: Frame) -> Frame | None:
        """``registertrigger`` through ``allowed_trigger_types``, the hook, the prefix and the
        target check (a ``FORBIDDEN`` ``triggerregistrationresult`` when the target is not
        allowed)."""
        ...

    async def register_trigger_type(self, conn: WorkerConnection, frame: Frame) -> Frame | None:
        """``registertriggertype`` through ``allow_trigger_type_registration`` and the hook."""
        ...
