"""One ``iii-worker-manager`` listener at run time (builtins.md §13, protocol.md §1.1, §8.1).

A :class:`WorkerListener` holds a listener's options, its compiled ``expose_functions`` and
its origin policy, and authenticates each socket: a trusted listener (no ``rbac`` block, no
middleware) gives connections no session at all; otherwise each ``/`` and ``/otel`` socket gets
an :class:`~.session.RbacSession` from the auth function's AuthResult (or the permissive one
without ``auth_function_id``). :func:`handshake_protocol` is the uvicorn HTTP protocol that
closes a TCP connection whose upgrade request is not complete within ``handshake_timeout_ms``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ...config.engine import EngineConfig
from ...config.worker_manager import WorkerListenerConfig
from ...core.errors import InvocationError
from ...origins import OriginPolicy
from ...types import Scope
from .rbac import PERMISSIVE, AuthError, AuthResult, Exposure, auth_input
from .session import RbacSession

if TYPE_CHECKING:
    from ...core.engine import EngineCore

__all__ = ["WorkerListener", "handshake_protocol", "security_functions"]


def security_functions(config: EngineConfig) -> frozenset[str]:
    """The functions the engine trusts to make access decisions: every listener's auth
    function, registration hooks and middleware, the stream socket's auth function and the
    HTTP middleware. An RBAC session may not register one of these ids (it would answer for
    the operator's function while that one is disconnected)."""
    ids: set[str | None] = {config.stream_auth_function}
    ids.update(m.function_id for m in config.http_middleware)
    for listener in config.listener_configs():
        ids.add(listener.middleware_function_id)
        rbac = listener.rbac
        if rbac is not None:
            ids.update(
                (
                    rbac.auth_function_id,
                    rbac.on_function_registration_function_id,
                    rbac.on_trigger_registration_function_id,
                    rbac.on_trigger_type_registration_function_id,
                )
            )
    return frozenset(i for i in ids if i)


class WorkerListener:
    """``WorkerListener(core, config, name)``: listener ``name`` (``worker`` for the main one,
    ``worker#<instance>`` for the others) with ``config``."""

    def __init__(self, core: EngineCore, config: WorkerListenerConfig, name: str) -> None:
        self.core = core
        self.config = config
        self.name = name
        rbac = config.rbac
        self.exposure = Exposure(rbac.expose_functions) if rbac is not None else None
        self.auth_function_id = rbac.auth_function_id if rbac is not None else None
        #: No ``rbac`` block and no middleware: connections get no session (protocol.md §8.1's
        #: permissive session, which changes nothing).
        self.trusted = rbac is None and config.middleware_function_id is None
        self.origins = OriginPolicy(config.allowed_origins)
        self.handshake_timeout_s = config.handshake_timeout_ms / 1000
        #: Ids this listener's sessions may not register (:func:`security_functions`).
        self.reserved = security_functions(core.config)

    async def authenticate(self, scope: Scope) -> RbacSession | None:
        """The session of the socket in ``scope`` (``None`` on a trusted listener): the auth
        function (namespace ``default``) is called with AuthInput and must answer within
        ``handshake_timeout_ms``. Raises :class:`~.rbac.AuthError` when it fails, answers late,
        or returns ``null`` or something that is not an AuthResult (§8.1)."""
        if self.trusted:
            return None
        function_id = self.auth_function_id
        if function_id is None:
            return RbacSession(self, PERMISSIVE)
        call = self.core.invoker.call(function_id, auth_input(scope))
        try:
            result = await asyncio.wait_for(call, self.handshake_timeout_s)
        except InvocationError as exc:
            raise AuthError(exc.message) from None
        except asyncio.TimeoutError:
            raise AuthError(
                f"auth function {function_id} did not answer within "
                f"{self.config.handshake_timeout_ms} ms"
            ) from None
        return RbacSession(self, AuthResult.parse(result))


@functools.cache
def handshake_protocol(timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (``http=`` option) that closes a connection which has not sent a
    complete WebSocket upgrade request within ``timeout_s`` seconds of opening (protocol.md
    §1.1 ``handshake_timeout_ms``). One class per timeout value."""

    class HandshakeTimeoutProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _handshake_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._handshake_timer = self.loop.call_later(timeout_s, self._handshake_expired)

        def _handshake_expired(self) -> None:
            self._handshake_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def _handshake_done(self) -> None:
            if self._handshake_timer is not None:
                self._handshake_timer.cancel()
                self._handshake_timer = None

        def handle_websocket_upgrade(self, *args: Any) -> None:
            self._handshake_done()
            super().handle_websocket_upgrade(*args)

        def connection_lost(self, exc: Exception | None) -> None:
            self._handshake_done()
            super().connection_lost(exc)

    HandshakeTimeoutProtocol.__name__ = HandshakeTimeoutProtocol.__qualname__ = (
        f"HandshakeTimeoutProtocol_{timeout_s:g}s"
    )
    return HandshakeTimeoutProtocol
