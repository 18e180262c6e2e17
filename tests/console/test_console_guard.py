"""The console's front door, with httpx against an embedded engine: foreign ``Host`` and
``Origin`` are refused, mutations need the token, the token URL sets a cookie; and the console
as an engine component (its port, its live stream, a busy port)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from iii_asgi.engine import EngineThread
from iii_asgi.engine.console import Console
from iii_asgi.engine.console.guard import CSP, cookie_name


@pytest.fixture
def engine(engine_factory: Callable[..., EngineThread]) -> EngineThread:
    return engine_factory(console_port=0)


def console_of(engine: EngineThread) -> Console:
    console = engine.workers.console
    assert console is not None
    return console


@pytest.fixture
def client(engine: EngineThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.console_url, timeout=30) as http:
        yield http


def state_get(engine: EngineThread, key: str) -> Any:
    return engine.run(engine.core.invoker.call("state::get", {"scope": "guard", "key": key}))


def set_form(key: str, value: Any) -> dict[str, str]:
    return {"scope": "guard", "key": key, "value": json.dumps(value)}


def test_the_console_url_and_its_token_url(engine: EngineThread) -> None:
    console = console_of(engine)
    port = console.port
    assert port is not None and engine.engine.console_port == port
    assert engine.console_url == f"http://127.0.0.1:{port}/"
    assert console.login_url == f"http://127.0.0.1:{port}/?token={console.token}"
    assert len(console.token) >= 32


def test_pages_answer_with_a_strict_policy(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "Read-only" in response.text  # no token yet: actions disabled
    assert client.get("/static/console.css").status_code == 200
    assert client.get("/nope").status_code == 404


@pytest.mark.parametrize(
    "host",
    ["evil.example:{port}", "evil.example", "127.0.0.1:1", "localhost.evil.example:{port}", ""],
)
def test_a_foreign_host_is_refused(engine: EngineThread, client: httpx.Client, host: str) -> None:
    host = host.format(port=console_of(engine).port)
    response = client.get("/", headers={"host": host})
    assert response.status_code == 400
    assert response.text == "Invalid Host header"
    assert response.headers["content-security-policy"] == CSP


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_its_own_host_is_accepted(engine: EngineThread, client: httpx.Client, host: str) -> None:
    response = client.get("/", headers={"host": host.format(port=console_of(engine).port)})
    assert response.status_code == 200


def test_a_foreign_origin_is_refused_even_with_the_token(
    engine: EngineThread, client: httpx.Client
) -> None:
    console = console_of(engine)
    token = {"x-console-token": console.token}
    for origin in ("http://evil.example", "null", f"https://127.0.0.1:{console.port}"):
        response = client.post(
            "/actions/state/set", data=set_form("k", 1), headers={**token, "origin": origin}
        )
        assert response.status_code == 403, origin
        assert client.get("/", headers={"origin": origin}).status_code == 403
    assert state_get(engine, "k") is None
    same = {**token, "origin": f"http://127.0.0.1:{console.port}", "accept": "application/json"}
    response = client.post("/actions/state/set", data=set_form("k", 2), headers=same)
    assert response.status_code == 200, response.text
    assert state_get(engine, "k") == 2


def test_a_mutation_without_the_token_is_refused(
    engine: EngineThread, client: httpx.Client
) -> None:
    for path in ("/actions/state/set", "/actions/invoke", "/actions/queue/redrive", "/"):
        response = client.post(path, data=set_form("k", 1))
        assert response.status_code == 403, path
        assert "console token" in response.text
    wrong = client.post(
        "/actions/state/set", data=set_form("k", 1), headers={"x-console-token": "nope"}
    )
    assert wrong.status_code == 403
    assert client.get("/?token=nope").status_code == 403
    assert state_get(engine, "k") is None


def test_the_token_url_sets_a_cookie_and_drops_the_token(
    engine: EngineThread, client: httpx.Client
) -> None:
    console = console_of(engine)
    response = client.get(f"/state?scope=guard&token={console.token}")
    assert response.status_code == 303
    assert response.headers["location"] == "/state?scope=guard"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(console.port)}={console.token};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.cookies.get(cookie_name(console.port)) == console.token
    away = client.get(f"//evil.example?token={console.token}")
    assert away.status_code == 303 and away.headers["location"] == "/"
    page = client.get("/state?scope=guard")
    assert "Read-only" not in page.text
    response = client.post(
        "/actions/state/set", data=set_form("c", {"x": 1}), headers={"accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert state_get(engine, "c") == {"x": 1}


def test_actions_answer_htmx_json_and_plain_forms(
    engine: EngineThread, client: httpx.Client
) -> None:
    client.headers["x-console-token"] = console_of(engine).token
    htmx = client.post("/actions/state/set", data=set_form("h", 1), headers={"hx-request": "true"})
    assert htmx.status_code == 200 and "Done" in htmx.text
    assert htmx.headers["hx-trigger"] == "refresh"
    plain = client.post("/actions/state/set", data={**set_form("p", 1), "next": "/state"})
    assert plain.status_code == 303 and plain.headers["location"] == "/state"
    away = client.post("/actions/state/set", data={**set_form("p", 1), "next": "//evil.example"})
    assert away.headers["location"] == "/"  # never a redirect off the console
    assert client.post("/actions/state/drop", data=set_form("p", 1)).status_code == 404
    bad = client.post(
        "/actions/state/set",
        data={"scope": "guard", "key": "b", "value": "{nope"},
        headers={"accept": "application/json"},
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_json"
    invoked = client.post(
        "/actions/invoke",
        data={"function_id": "state::get", "payload": '{"scope": "guard", "key": "h"}'},
        headers={"accept": "application/json"},
    )
    assert invoked.json()["result"] == 1
    missing = client.post(
        "/actions/invoke",
        data={"function_id": "nope::nope", "payload": "{}"},
        headers={"accept": "application/json"},
    )
    assert missing.status_code == 422 and missing.json()["code"] == "function_not_found"


def test_the_live_stream_sends_a_topic_when_it_changes(
    engine: EngineThread, client: httpx.Client
) -> None:
    with client.stream("GET", "/events?topic=state&topic=functions&scope=guard") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        assert next(lines) == "retry: 2000"
        engine.run(
            engine.core.invoker.call("state::set", {"scope": "guard", "key": "live", "value": 1})
        )
        seen = []
        for line in lines:
            seen.append(line)
            if line == "event: state":
                break
        assert "event: functions" not in seen


def test_a_busy_console_port_does_not_stop_the_engine(
    engine_factory: Callable[..., EngineThread],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        engine = engine_factory(console_port=port)
        assert engine.engine.console_port is None
        with pytest.raises(RuntimeError, match="console is not running"):
            _ = engine.console_url
        assert engine.port is not None  # the rest of the engine serves


def test_no_console_without_a_port(engine_factory: Callable[..., EngineThread]) -> None:
    engine = engine_factory()
    assert engine.workers.console is None
    assert engine.engine.console_port is None
