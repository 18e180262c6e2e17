"""The 0.25 names this SDK provides without the feature behind them (observe, filters), and the
small helpers added for drop-in use (docs/sdk.md "Drop-in")."""

from __future__ import annotations

import pytest
from opentelemetry import context as otel_context

import iii.protocol
import iii.types
from iii import ObserveHooks, Observer, ObserveRejection, ObserverHandle
from iii.filter import MATCH_ALL, FilterError, compile_filter
from iii_helpers.observability import telemetry


def test_observer_handle_reports_unsupported() -> None:
    handle = ObserverHandle()
    states: list[str] = []
    off = handle.on_state_change(lambda state, reason: states.append(state))
    assert handle.state == "error"
    assert handle.reason is not None and handle.reason["code"] == "UNSUPPORTED"
    with pytest.raises(ObserveRejection) as caught:
        handle.ready(timeout=0.1)
    assert caught.value.code == "UNSUPPORTED"
    handle.dispose()
    handle.dispose()
    off()
    off()
    assert states == ["disposed"] and handle.state == "disposed"


def test_observe_hooks_options() -> None:
    class Owner(ObserveHooks):
        delivery = "owner"

    assert Owner().delivery == "owner" and Owner().allow is None
    assert ObserveHooks.from_value({"allow": False}).allow is False  # type: ignore[union-attr]
    assert ObserveHooks.from_value(None) is None
    with pytest.raises(TypeError):
        ObserveHooks(nope=1)
    with pytest.raises(TypeError):
        ObserveHooks.from_value(3)  # type: ignore[arg-type]


def test_observer_fields_and_unsupported_delivery() -> None:
    observer = Observer("o1", "orders::create", target="audit::log")
    assert observer.to_dict()["capture"] == ["input", "output", "caller"]
    assert observer.matches({"input": {"x": 1}})
    with pytest.raises(NotImplementedError):
        observer.emit({"x": 1})


def test_filter_is_only_match_all() -> None:
    assert MATCH_ALL.matches({}) and compile_filter({}).match_all
    with pytest.raises(FilterError) as caught:
        compile_filter([])
    assert caught.value.code == "INVALID_FILTER"
    with pytest.raises(NotImplementedError):
        compile_filter({"input.amount": {"$gte": 5}})


def test_lazy_exports_behave_like_attributes() -> None:
    assert iii.types.IIIClient is iii.III
    assert iii.protocol.RegisterTriggerInput is iii.RegisterTriggerInput
    assert "IIIClient" in dir(iii.types)
    with pytest.raises(AttributeError):
        iii.types.NotAName  # noqa: B018


def test_baggage_helpers() -> None:
    token = otel_context.attach(telemetry.set_baggage_entry("tenant", "acme"))
    try:
        assert telemetry.get_baggage_entry("tenant") == "acme"
        assert telemetry.get_all_baggage() == {"tenant": "acme"}
        inner = otel_context.attach(telemetry.remove_baggage_entry("tenant"))
        assert telemetry.get_baggage_entry("tenant") is None
        otel_context.detach(inner)
    finally:
        otel_context.detach(token)
    context = telemetry.extract_context(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "k=v"
    )
    token = otel_context.attach(context)
    try:
        assert telemetry.get_all_baggage() == {"k": "v"}
    finally:
        otel_context.detach(token)
    assert telemetry.get_logger() is None  # OTel is off in the suite
