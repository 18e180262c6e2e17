"""The public surface of ``import iii``: exactly these names, each importable."""

from __future__ import annotations

import pytest

import iii

PUBLIC = frozenset(
    {
        "DEFAULT_ENGINE_URL",
        "III",
        "ApiRequest",
        "ApiResponse",
        "Channel",
        "ChannelReader",
        "ChannelWriter",
        "Context",
        "EnqueueResult",
        "FunctionInfo",
        "FunctionRef",
        "HttpAuthApiKey",
        "HttpAuthBearer",
        "HttpAuthConfig",
        "HttpAuthHmac",
        "HttpInvocationConfig",
        "HttpMethod",
        "HttpRequest",
        "HttpResponse",
        "IIIConnectionState",
        "IIIForbiddenError",
        "IIIInvocationError",
        "IIITimeoutError",
        "InitOptions",
        "InvocationContext",
        "InvocationError",
        "Logger",
        "MessageType",
        "ReconnectionConfig",
        "RegisterFunctionFormat",
        "RegisterTriggerInput",
        "RegisterTriggerTypeInput",
        "RegistrationRejectedError",
        "StreamChannelRef",
        "StreamRequest",
        "StreamResponse",
        "TelemetryOptions",
        "Trigger",
        "TriggerAction",
        "TriggerActionEnqueue",
        "TriggerActionVoid",
        "TriggerConfig",
        "TriggerHandler",
        "TriggerInfo",
        "TriggerRequest",
        "TriggerTypeRef",
        "WorkerInfo",
        "current_invocation",
        "get_context",
        "http",
        "register_worker",
        "with_context",
    }
)


def test_all_is_exactly_the_public_surface() -> None:
    assert set(iii.__all__) == PUBLIC
    assert len(iii.__all__) == len(PUBLIC)  # no duplicates


def test_every_public_name_resolves() -> None:
    missing = [name for name in iii.__all__ if not hasattr(iii, name)]
    assert missing == []


def test_http_helper_and_module() -> None:
    """``iii.http`` is the helper function; the module's names import via ``from iii.http``."""
    from iii.http import HttpResponse, http

    assert iii.http is http and callable(iii.http)
    assert iii.HttpResponse is HttpResponse


ASGI_PUBLIC = frozenset(
    {
        "BridgeRoute",
        "IIIBridge",
        "IIIClient",
        "IIIMiddleware",
        "Invocation",
        "InvocationInfo",
        "RouteCollisionError",
        "WorkerApp",
        "get_client",
        "get_invocation",
    }
)


def test_iii_asgi_all_is_exactly_the_public_surface() -> None:
    import iii_asgi

    assert set(iii_asgi.__all__) == ASGI_PUBLIC
    assert len(iii_asgi.__all__) == len(ASGI_PUBLIC)
    missing = [name for name in iii_asgi.__all__ if not hasattr(iii_asgi, name)]
    assert missing == []
    with pytest.raises(AttributeError):
        iii_asgi.NotAName  # noqa: B018
