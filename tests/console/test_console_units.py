"""The console's pure parts: schema rows and examples, the waterfall layout, log levels,
formatting, the invocation rates."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from iii_asgi.engine.console import format as fmt
from iii_asgi.engine.console.live import Rates
from iii_asgi.engine.console.pages import http_request
from iii_asgi.engine.console.schema import example, schema_rows, type_text
from iii_asgi.engine.console.telemetry import level_of, waterfall


class Tag(BaseModel):
    name: str = Field(description="the tag")


class Todo(BaseModel):
    title: str
    done: bool = False
    tags: list[Tag] = []
    parent: Todo | None = None


def test_schema_rows_follow_refs_arrays_and_optionals() -> None:
    schema = {"type": "object", "properties": {"body": Todo.model_json_schema()}}
    rows = [(r.depth, r.name, r.type, r.required) for r in schema_rows(schema)]
    assert rows[:4] == [
        (0, "body", "Todo", False),
        (1, "title", "string", True),
        (1, "done", "boolean", False),
        (1, "tags", "array of Tag", False),
    ]
    assert (2, "name", "string", True) in rows
    assert (1, "parent", "Todo | null", False) in rows  # a recursive model is shown once
    assert len(rows) == 6
    assert next(r for r in schema_rows(schema) if r.name == "name").description == "the tag"


def test_type_text_and_example() -> None:
    assert type_text({"enum": ["a", "b"]}) == '"a" | "b"'
    assert type_text({"type": ["string", "null"]}) == "string | null"
    assert type_text(None) == "any"
    assert example(Todo.model_json_schema()) == {"title": ""}
    assert example({"type": "object", "properties": {"n": {"type": "integer", "default": 3}}}) == {
        "n": 3
    }
    assert example({"type": "array", "items": {"type": "string"}}) == [""]
    assert example(None) == {}


def test_http_request_payload_of_a_route() -> None:
    payload = http_request(
        {"api_path": "todos/:todo_id", "http_method": "patch"}, {"body": {"title": ""}}
    )
    assert payload == {
        "method": "PATCH",
        "path": "/todos/:todo_id",
        "path_params": {"todo_id": ""},
        "query_params": {},
        "headers": {},
        "body": {"title": ""},
    }


def span(span_id: str, parent: str | None, start: int, end: int, **extra: Any) -> dict[str, Any]:
    return {
        "trace_id": "t",
        "span_id": span_id,
        "parent_span_id": parent,
        "name": extra.get("name", span_id),
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "duration_ms": (end - start) / 1e6,
        "status": {"code": extra.get("status", "STATUS_CODE_UNSET")},
        "attributes": extra.get("attributes", {}),
        "events": [],
        "service_name": extra.get("service", "worker"),
    }


def test_waterfall_places_children_under_parents_on_one_axis() -> None:
    spans = [
        span("a", None, 0, 10_000_000, service="iii", name="GET /x"),
        span("c", "b", 4_000_000, 6_000_000, status="STATUS_CODE_ERROR"),
        span("b", "a", 2_000_000, 8_000_000),
        span("d", "gone", 9_000_000, 9_500_000),  # parent not stored: a root
    ]
    laid = waterfall("t", spans)
    assert laid is not None
    assert [(r.span["span_id"], r.depth) for r in laid.rows] == [
        ("a", 0),
        ("b", 1),
        ("c", 2),
        ("d", 0),
    ]
    b = laid.rows[1]
    assert (b.left, b.width, b.offset_ms) == (20.0, 60.0, 2.0)
    assert laid.rows[0].service == "engine"
    assert laid.rows[2].error and laid.summary.error
    assert laid.summary.duration_ms == 10.0 and laid.summary.name == "GET /x"
    assert waterfall("t", []) is None


def test_levels_and_formats() -> None:
    assert [level_of(n) for n in (0, 5, 9, 13, 17, 21)] == [
        "info",
        "debug",
        "info",
        "warn",
        "error",
        "fatal",
    ]
    assert fmt.duration(0.5) == "500 µs"
    assert fmt.duration(12.34) == "12.3 ms"
    assert fmt.duration(2500) == "2.50 s"
    assert fmt.number(12345) == "12,345" and fmt.number(1.25) == "1.2"
    html = str(fmt.json_html({"a": "<b>", "n": 1, "t": None}))
    assert '<span class="j-key">&#34;a&#34;</span>' in html
    assert "&lt;b&gt;" in html and '<span class="j-lit">null</span>' in html
    assert "j-key" in str(fmt.attr_value('{"x": [1]}'))
    assert str(fmt.attr_value("<plain>")) == "&lt;plain&gt;"
    assert fmt.path_quote("todos::list_todos") == "todos::list_todos"
    assert fmt.path_quote("a b/c") == "a%20b%2Fc"
    assert fmt.rows("a\nb") == 6 and fmt.rows("\n" * 50) == 20


class Counter:
    invocations = 0
    errors = 0


def test_rates_from_counter_samples() -> None:
    counter = Counter()
    rates = Rates(counter)  # type: ignore[arg-type]
    rates.samples.clear()
    for second in range(5):
        counter.invocations = second * 10
        counter.errors = second
        rates.samples.append((float(second), counter.invocations, counter.errors))
    assert rates.per_second() == (10.0, 1.0)
    history = rates.history(6)
    assert history[0] == (0.0, 0.0) and history[-1] == (10.0, 1.0) and len(history) == 6
