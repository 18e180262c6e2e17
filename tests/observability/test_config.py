"""OtelConfig defaults and environment overrides; init_otel / flush_otel / shutdown_otel;
ReconnectionConfig; payload redaction (seed 003)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry import trace

import iii
from iii.observability import (
    REDACTED_PLACEHOLDER,
    OtelConfig,
    ReconnectionConfig,
    flush_otel,
    init_otel,
    redact,
    redact_and_truncate,
    resolve_max_bytes_from_env,
    shutdown_otel,
    with_span,
)
from iii.observability._state import state
from tests.observability.conftest import Otel

ENV = (
    "OTEL_ENABLED",
    "III_URL",
    "OTEL_SERVICE_NAME",
    "SERVICE_VERSION",
    "SERVICE_NAMESPACE",
    "SERVICE_INSTANCE_ID",
    "OTEL_SPANS_FLUSH_INTERVAL_MS",
    "OTEL_LOGS_FLUSH_INTERVAL_MS",
    "OTEL_LOGS_BATCH_SIZE",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    config = OtelConfig().resolved()
    assert config.enabled is True
    assert config.engine_ws_url == "ws://localhost:49134"
    assert config.service_name == "iii-python-sdk"
    assert config.service_version == "unknown"
    assert config.service_namespace is None
    assert config.service_instance_id and len(config.service_instance_id) == 36  # a UUID
    assert config.spans_flush_interval_ms == 100
    assert config.logs_enabled is True
    assert config.logs_flush_interval_ms == 100
    assert config.logs_batch_size == 1
    assert config.metrics_enabled is True
    assert config.metrics_export_interval_ms == 60_000
    assert config.fetch_instrumentation_enabled is True


def test_environment_overrides(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("III_URL", "ws://engine:1234")
    clean_env.setenv("OTEL_SERVICE_NAME", "orders")
    clean_env.setenv("SERVICE_VERSION", "1.2.3")
    clean_env.setenv("SERVICE_NAMESPACE", "shop")
    clean_env.setenv("SERVICE_INSTANCE_ID", "pod-7")
    clean_env.setenv("OTEL_SPANS_FLUSH_INTERVAL_MS", "25")
    clean_env.setenv("OTEL_LOGS_FLUSH_INTERVAL_MS", "40")
    clean_env.setenv("OTEL_LOGS_BATCH_SIZE", "8")
    config = OtelConfig().resolved()
    assert (config.engine_ws_url, config.service_name, config.service_version) == (
        "ws://engine:1234",
        "orders",
        "1.2.3",
    )
    assert (config.service_namespace, config.service_instance_id) == ("shop", "pod-7")
    assert (config.spans_flush_interval_ms, config.logs_flush_interval_ms) == (25, 40)
    assert config.logs_batch_size == 8


def test_explicit_fields_win_over_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OTEL_SERVICE_NAME", "from-env")
    clean_env.setenv("OTEL_ENABLED", "false")
    config = OtelConfig(service_name="explicit", enabled=True).resolved()
    assert (config.service_name, config.enabled) == ("explicit", True)


@pytest.mark.parametrize("value", ["false", "0", "no", "off", "FALSE", " Off "])
def test_otel_enabled_false_values(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("OTEL_ENABLED", value)
    assert OtelConfig().resolved().enabled is False


def test_invalid_interval_falls_back_to_the_default(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OTEL_SPANS_FLUSH_INTERVAL_MS", "soon")
    assert OtelConfig().resolved().spans_flush_interval_ms == 100


def test_coerce_accepts_a_dict_and_refuses_junk() -> None:
    assert OtelConfig.coerce({"service_name": "x"}).service_name == "x"
    with pytest.raises(TypeError):
        OtelConfig.coerce({"no_such_field": 1})
    with pytest.raises(TypeError, match="OtelConfig or a dict"):
        OtelConfig.coerce(42)  # type: ignore[arg-type]


def test_init_is_idempotent_and_shutdown_allows_a_fresh_start(otel: Otel) -> None:
    provider = state.tracer_provider
    init_otel(OtelConfig(service_name="second"))  # no-op: already initialised
    assert state.tracer_provider is provider
    assert trace.get_tracer_provider() is provider  # installed globally (none was set)
    with_span("one", lambda _: None)
    assert [s.name for s in otel.spans()] == ["one"]
    shutdown_otel()
    assert state.tracer is None and not state.initialized
    assert with_span("after-shutdown", lambda span: span.is_recording()) is False
    init_otel(OtelConfig(engine_export=False, service_name="again"))
    assert state.tracer_provider is not provider
    assert state.config is not None and state.config.service_name == "again"


def test_disabled_config_sets_nothing_up(otel_env: None, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OTEL_ENABLED", "off")
    init_otel()
    assert not state.initialized and state.tracer is None
    assert flush_otel() is True  # nothing to flush


def test_flush_exports_pending_spans_without_stopping(otel_factory: Any) -> None:
    otel = otel_factory(spans_flush_interval_ms=60_000)  # the batch would wait a minute
    with_span("pending", lambda _: None)
    assert otel.span_exporter.get_finished_spans() == ()
    assert flush_otel() is True
    assert [s.name for s in otel.span_exporter.get_finished_spans()] == ["pending"]
    with_span("still-running", lambda _: None)
    assert "still-running" in [s.name for s in otel.spans()]


def test_resource_carries_the_service_fields(otel_factory: Any) -> None:
    otel = otel_factory(service_name="orders", service_version="2.0", service_namespace="shop")
    with_span("x", lambda _: None)
    resource = otel.span("x").resource.attributes
    assert resource["service.name"] == "orders"
    assert resource["service.version"] == "2.0"
    assert resource["service.namespace"] == "shop"
    assert resource["service.instance.id"]


def test_reconnection_config_defaults_and_backoff() -> None:
    assert iii.ReconnectionConfig is ReconnectionConfig
    config = ReconnectionConfig()
    assert (config.initial_delay_ms, config.max_delay_ms) == (1000, 30_000)
    assert (config.backoff_multiplier, config.jitter_factor, config.max_retries) == (2.0, 0.3, -1)
    for attempt, base in ((0, 1.0), (1, 2.0), (3, 8.0), (10, 30.0)):
        delay = config.delay_s(attempt)
        assert base * 0.7 - 1e-9 <= delay <= base * 1.3 + 1e-9


# -- payloads -------------------------------------------------------------------------------------


def test_redact_replaces_sensitive_keys_recursively() -> None:
    value = {
        "user": "ann",
        "password": "hunter2",
        "Authorization": "Bearer x",
        "nested": [{"api_key": "k", "ok": 1}, ("session_id", 2)],
        "profile": {"accessToken": "t", "name": "Ann"},
    }
    assert redact(value) == {
        "user": "ann",
        "password": REDACTED_PLACEHOLDER,
        "Authorization": REDACTED_PLACEHOLDER,
        "nested": [{"api_key": REDACTED_PLACEHOLDER, "ok": 1}, ["session_id", 2]],
        "profile": {"accessToken": REDACTED_PLACEHOLDER, "name": "Ann"},
    }
    assert value["password"] == "hunter2"  # the input is not modified
    assert redact("password") == "password" and redact(7) == 7


def test_redact_and_truncate_serialises_and_caps_bytes() -> None:
    text = redact_and_truncate({"secret": "s", "n": 1}, max_bytes=1000)
    assert json.loads(text) == {"secret": REDACTED_PLACEHOLDER, "n": 1}
    long = redact_and_truncate({"text": "é" * 500}, max_bytes=64)
    assert len(long.encode()) <= 64
    assert long.endswith('..."[TRUNCATED]"')
    assert redact_and_truncate({"obj": object()}, max_bytes=1000).startswith('{"obj":"<object')


@pytest.mark.parametrize(
    "key", ["PASSWORD", "X-Api-Key", "my_Session", "to\u212aen", "Cookie", "db.Credentials"]
)
def test_redact_and_truncate_finds_keys_in_any_case(key: str) -> None:
    # "to\u212aen": KELVIN SIGN lower-cases to "k" ("token"), which the byte search must not miss
    value = {"outer": [{key: "s3cr3t", "keep": key}]}
    text = redact_and_truncate(value, max_bytes=1000)
    assert "s3cr3t" not in text
    assert json.loads(text) == redact(value)
    assert redact_and_truncate({"plain": "data"}, max_bytes=1000) == '{"plain":"data"}'


def test_max_bytes_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("III_TRACE_PAYLOAD_MAX_BYTES", raising=False)
    assert resolve_max_bytes_from_env() == 4096
    monkeypatch.setenv("III_TRACE_PAYLOAD_MAX_BYTES", "128")
    assert resolve_max_bytes_from_env() == 128
    assert len(redact_and_truncate("x" * 1000).encode()) <= 128  # None → from the env
    monkeypatch.setenv("III_TRACE_PAYLOAD_MAX_BYTES", "0")
    assert resolve_max_bytes_from_env() is None
    assert len(redact_and_truncate("x" * 10_000)) == 10_002  # uncapped
    monkeypatch.setenv("III_TRACE_PAYLOAD_MAX_BYTES", "lots")
    assert resolve_max_bytes_from_env() == 4096
