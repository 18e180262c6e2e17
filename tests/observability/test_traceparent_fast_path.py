"""The executor's ``traceparent`` parsing (``_invocation._parent``) gives the same parent as the
OpenTelemetry W3C propagator for valid, unusual and malformed values (protocol.md §3.6)."""

from __future__ import annotations

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace

from iii.observability._invocation import _parent
from iii.observability._spans import _TRACE_CONTEXT

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"


@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{TRACE}-{SPAN}-01",  # sampled
        f"00-{TRACE}-{SPAN}-00",  # not sampled
        f"00-{TRACE}-{SPAN}-03",  # other flag bits
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id: invalid
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id: invalid
        f"00-{TRACE.upper()}-{SPAN}-01",  # upper-case hex
        f"01-{TRACE}-{SPAN}-01-extra",  # a later version with more fields
        f"ff-{TRACE}-{SPAN}-01",  # forbidden version
        f" 00-{TRACE}-{SPAN}-01 ",  # surrounding blanks
        "not a traceparent",
        "",
    ],
)
def test_parent_matches_the_w3c_propagator(traceparent: str) -> None:
    parent, ctx = _parent(traceparent, otel_context.Context())
    ours = trace.get_current_span(ctx).get_span_context()
    assert parent == (ours if ours.is_valid else None)
    theirs = trace.get_current_span(
        _TRACE_CONTEXT.extract({"traceparent": traceparent}, otel_context.Context())
    ).get_span_context()
    assert ours == theirs
    assert (ours.is_valid, ours.is_remote, ours.trace_flags, ours.trace_state) == (
        theirs.is_valid,
        theirs.is_remote,
        theirs.trace_flags,
        theirs.trace_state,
    )


def test_a_valid_traceparent_names_a_remote_parent() -> None:
    parent, context = _parent(f"00-{TRACE}-{SPAN}-01", otel_context.Context())
    ctx = trace.get_current_span(context).get_span_context()
    assert parent is ctx
    assert (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}") == (TRACE, SPAN)
    assert ctx.is_remote and ctx.trace_flags.sampled
