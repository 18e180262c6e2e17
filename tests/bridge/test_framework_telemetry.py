"""FastAPI's native telemetry stays off under the bridge unless kept (iii_asgi.bridge.telemetry)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette

from iii_asgi import IIIBridge

pytestmark = pytest.mark.skipif(
    not hasattr(FastAPI(), "_native_telemetry"), reason="this FastAPI has no native telemetry"
)


@pytest.fixture
def global_provider(monkeypatch: pytest.MonkeyPatch) -> TracerProvider:
    """A configured global tracer provider, as the iii SDK installs one (restored after the
    test: OpenTelemetry lets a process set it only once)."""
    provider = TracerProvider()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    assert trace.get_tracer_provider() is provider
    return provider


def test_bridging_turns_fastapis_native_telemetry_off(global_provider: TracerProvider) -> None:
    app = FastAPI()
    assert app._native_telemetry.enabled()  # what a global provider switches on
    IIIBridge(app)
    assert not app._native_telemetry.enabled()


def test_kept_when_asked_or_configured(
    global_provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = FastAPI()
    IIIBridge(kept, framework_telemetry=True)
    assert kept._native_telemetry.enabled()
    configured = FastAPI(telemetry={"tracer_provider": global_provider})
    IIIBridge(configured)
    assert configured._native_telemetry.enabled()
    monkeypatch.setenv("III_FRAMEWORK_TELEMETRY", "true")
    from_env = FastAPI()
    IIIBridge(from_env)
    assert from_env._native_telemetry.enabled()


def test_other_apps_and_disabled_bridges_are_left_alone(global_provider: TracerProvider) -> None:
    app = Starlette()
    IIIBridge(app)
    assert not hasattr(app, "_telemetry")
    unbridged = FastAPI()
    IIIBridge(unbridged, enabled=False)  # III_BRIDGE=off: the app as it was
    assert unbridged._native_telemetry.enabled()
