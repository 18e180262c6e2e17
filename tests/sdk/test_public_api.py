"""The public surface of ``import iii``: exactly these names, each importable."""

from __future__ import annotations

import pytest

import iii

PUBLIC = frozenset(
    {
        "Target",
        "ObserverState",
        "ObserverOptions",
        "ObserverHandle",
        "Observer",
        "Observed",
        "ObserveSource",
        "ObserveRejection",
        "ObserveHooks",
        "MiddlewareFunctionInput",
        "IIIClient",
        "Filter",
        "ConnectionStateCallback",
        "Capture",
        "Caller",
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
        "IStream",
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
        "route_options",
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


OBSERVABILITY = frozenset(
    {
        "DEFAULT_ALLOWLIST",
        "REDACTED_PLACEHOLDER",
        "BaggageSpanProcessor",
        "Logger",
        "OtelConfig",
        "ReconnectionConfig",
        "current_span_id",
        "current_span_is_recording",
        "current_trace_id",
        "execute_traced_request",
        "extract_baggage",
        "extract_traceparent",
        "flush_otel",
        "init_otel",
        "inject_baggage",
        "inject_traceparent",
        "record_span_event",
        "redact",
        "redact_and_truncate",
        "resolve_max_bytes_from_env",
        "set_current_span_attribute",
        "set_current_span_error",
        "shutdown_otel",
        "with_span",
    }
)


def test_observability_module_surface() -> None:
    """Seed 003's ``observability`` module: every function and type, nothing else."""
    import iii.observability as observability

    assert set(observability.__all__) == OBSERVABILITY
    assert len(observability.__all__) == len(OBSERVABILITY)
    assert all(hasattr(observability, name) for name in observability.__all__)
    assert observability.Logger is iii.Logger  # one Logger, also at the root
    assert observability.ReconnectionConfig is iii.ReconnectionConfig


def test_iii_observability_import_path() -> None:
    """Seed 001: ``from iii_observability import Logger``; the same objects."""
    import iii.observability as observability
    import iii_observability

    assert set(iii_observability.__all__) == OBSERVABILITY
    assert all(
        getattr(iii_observability, name) is getattr(observability, name) for name in OBSERVABILITY
    )
