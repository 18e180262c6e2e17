"""HTTP-invoked functions (protocol.md §4): validation, the outbound request, response mapping."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import socket
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from engine_wire import Wire

import iii
from iii_asgi.engine import EngineConfig, EngineThread
from iii_asgi.engine.core.errors import InvocationError
from iii_asgi.engine.workers.http_functions.worker import (
    UrlPolicy,
    is_private_ip,
    map_response,
    resolve_auth,
    sign,
    validate_url,
)
from tests.engine.http_support import http as http_client
from tests.engine.http_support import routed
from tests.engine.http_support import worker as http_worker

# -- a real receiving server ----------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


@dataclass
class Receiver:
    """Records every request; answers ``routes[path] = (status, headers, body)`` (default 200
    with ``{"ok":true}``); ``/slow`` waits a second first."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    routes: dict[str, tuple[int, list[tuple[bytes, bytes]], bytes]] = field(default_factory=dict)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        path = scope["path"]
        self.requests.append(
            Received(scope["method"], path, scope["query_string"].decode(), headers, body)
        )
        if path == "/slow":
            await asyncio.sleep(1)
        status, out_headers, out = self.routes.get(
            path, (200, [(b"content-type", b"application/json")], b'{"ok":true}')
        )
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": out})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", ws="none", log_config=None, access_log=False)
    server = _Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.005)
    app.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    yield app
    server.should_exit = True
    await task
    sock.close()


@pytest.fixture
def dev_engine(engine_factory: Callable[..., EngineThread]) -> EngineThread:
    """Local development mode: http:// and loopback URLs are allowed."""
    return engine_factory(local_development=True)


async def register(wire: Wire, function_id: str, invocation: dict[str, Any]) -> None:
    await wire.send({"type": "registerfunction", "id": function_id, "invocation": invocation})
    await wire.sync()


# -- unit: signer, validator, auth, mapping -------------------------------------------------------


def test_signature_test_vector() -> None:
    assert base64.b64encode(b'{"a":1}') == b"eyJhIjoxfQ=="
    assert sign(b'{"a":1}', "1700000000", "secret") == (
        "sha256=50b3b863f796feaf3207ef3da978bcf390db336f032bed7a055730e6b1f61eb6"
    )


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("172.31.255.255", True),
        ("172.32.0.1", False),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("255.255.255.255", True),
        ("192.0.2.1", True),
        ("198.51.100.7", True),
        ("203.0.113.9", True),
        ("0.0.0.0", True),
        ("0.1.2.3", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("8.8.8.8", False),
        ("::1", True),
        ("::", True),
        ("fc00::1", True),
        ("fd12:3456::1", True),
        ("fe80::1", True),
        ("ff02::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:8.8.8.8", False),
        ("2606:4700::1111", False),
    ],
)
def test_private_addresses(address: str, private: bool) -> None:
    assert is_private_ip(ipaddress.ip_address(address)) is private


def resolver(*addresses: str, fail: bool = False) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        assert port == 443
        if fail:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(addresses)

    return resolve


async def expect_invalid(url: str, policy: UrlPolicy, message: str, resolve: Any = None) -> None:
    with pytest.raises(InvocationError) as info:
        await validate_url(url, policy, resolve or resolver("93.184.216.34"))
    assert (info.value.code, info.value.message) == ("url_validation_failed", message)


async def test_url_validation_rules() -> None:
    strict = UrlPolicy()
    public = resolver("93.184.216.34")
    await validate_url("https://example.com/x?y=1", strict, public)
    for bad in ("not a url", "https://", "ftp://example.com/x", "https://example.com:99999/"):
        await expect_invalid(bad, strict, "Invalid URL")
    await expect_invalid("http://example.com/x", strict, "HTTPS is required")
    # allowlist: globs on the host only
    listed = UrlPolicy(allowlist=("*.example.com", "api-?.test", "[ab].io"))
    await validate_url("https://a.example.com/p", listed, public)
    await validate_url("https://API-1.test/p", listed, public)
    await validate_url("https://b.io/", listed, public)
    for host in ("example.com", "evil.com", "api-10.test", "c.io"):
        await expect_invalid(f"https://{host}/example.com", listed, "URL not in allowlist")
    # private IPs: literal hosts, and any resolved address
    for host in ("127.0.0.1", "10.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "[fe80::1]"):
        await expect_invalid(f"https://{host}/", strict, "Private IP blocked")
    await validate_url("https://[::ffff:8.8.8.8]/", strict, public)
    await validate_url("https://100.64.0.1/", strict, public)
    await expect_invalid(
        "https://mixed.test/", strict, "Private IP blocked", resolver("8.8.8.8", "10.0.0.5")
    )
    await expect_invalid("https://nowhere.test/", strict, "DNS lookup failed", resolver(fail=True))
    await expect_invalid("https://empty.test/", strict, "DNS lookup failed", resolver())
    # the real resolver: localhost is loopback
    with pytest.raises(InvocationError, match="Private IP blocked"):
        await validate_url("https://localhost/", strict)
    # relaxed policies
    await validate_url(
        "http://127.0.0.1:1/", UrlPolicy(block_private_ips=False, require_https=False)
    )
    await validate_url("https://localhost/", UrlPolicy(block_private_ips=False))


def test_policy_from_config() -> None:
    assert UrlPolicy.from_config(EngineConfig()) == UrlPolicy(("*",), True, True)
    dev = EngineConfig(local_development=True, http_functions_url_allowlist=["*.test"])
    assert UrlPolicy.from_config(dev) == UrlPolicy(("*.test",), False, False)
    assert UrlPolicy.from_config(EngineConfig(http_functions_url_allowlist=[])).allowlist == ("*",)


def test_auth_resolution_from_the_engine_environment() -> None:
    env = {"TOKEN": "t", "SECRET": "s", "KEY": "k"}
    assert resolve_auth(None, env) is None
    assert resolve_auth(iii.HttpAuthBearer(token_key="TOKEN"), env) is not None
    for auth, code in (
        (iii.HttpAuthBearer(token_key="NOPE"), "token_not_found"),
        (iii.HttpAuthHmac(secret_key="NOPE"), "secret_not_found"),
        (iii.HttpAuthApiKey(header="x-key", value_key="NOPE"), "api_key_not_found"),
    ):
        with pytest.raises(InvocationError) as info:
            resolve_auth(auth, env)
        assert info.value.code == code and "NOPE" in info.value.message


def test_response_mapping_table() -> None:
    assert map_response(200, b"") is None
    assert map_response(201, b'{"a":[1]}') == {"a": [1]}
    assert map_response(204, b"") is None
    assert map_response(302, b'{"moved":1}') == {"moved": 1}
    assert map_response(301, b"<html>") is None
    assert map_response(101, b"") is None

    def error(status: int, body: bytes) -> tuple[str, str]:
        with pytest.raises(InvocationError) as info:
            map_response(status, body)
        return info.value.code, info.value.message

    assert error(200, b"not json")[0] == "invalid_response"
    assert error(404, b'{"error":{"code":"NOPE","message":"no"}}') == ("NOPE", "no")
    assert error(400, b'{"error":{}}') == ("http_error", "HTTP request failed")
    assert error(400, b'{"error":{"message":"bad"}}') == ("http_error", "bad")
    assert error(500, b"boom") == ("http_error", "HTTP 500 Internal Server Error")
    assert error(503, b'{"error":"text"}') == ("http_error", "HTTP 503 Service Unavailable")
    assert error(599, b"") == ("http_error", "HTTP 599 <unknown status code>")


# -- through the engine, against a real server ----------------------------------------------------


async def test_hmac_request_shape_and_signature(
    dev_engine: EngineThread, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("III_SECRET_TEST_HMAC", "s3cret")
    worker = await Wire.connect(dev_engine.url, name="ext")
    await register(
        worker,
        "ext::signed",
        {
            "url": f"{receiver.url}/hook?src=iii",
            "method": "PUT",
            "headers": {"x-extra": "1", "Content-Type": "text/x-dup"},
            "auth": {"type": "hmac", "secret_key": "III_SECRET_TEST_HMAC"},
        },
    )
    caller = await Wire.connect(dev_engine.url, name="caller")
    frame = await caller.call("ext::signed", {"b": "é", "a": [1, 2]})
    assert frame["result"] == {"ok": True}, frame
    await worker.silent(0.05)  # the engine, not the worker, executes the function
    [request] = receiver.requests
    assert (request.method, request.path, request.query) == ("PUT", "/hook", "src=iii")
    assert json.loads(request.body) == {
        "b": "é",
        "a": [1, 2],
        "_caller_worker_id": caller.worker_id,
    }
    assert b" " not in request.body and "é".encode() in request.body  # compact, not escaped
    names = [k for k, _ in request.headers]
    ours = [
        "content-type",
        "x-iii-function-path",
        "x-iii-invocation-id",
        "x-iii-timestamp",
        "x-extra",
        "content-type",
        "x-iii-signature",
    ]
    assert [n for n in names if n in ours] == ours  # §4.2 order; a configured dup adds a value
    assert request.header("content-type") == ["application/json", "text/x-dup"]
    assert request.header("x-iii-function-path") == ["ext::signed"]
    assert request.header("x-extra") == ["1"]
    [invocation_id] = request.header("x-iii-invocation-id")
    assert invocation_id != frame["invocation_id"] and len(invocation_id) == 36
    # verify the signature independently of the engine's signer
    [timestamp] = request.header("x-iii-timestamp")
    signing_input = f"{timestamp}:{base64.b64encode(request.body).decode()}"
    expected = hmac.new(b"s3cret", signing_input.encode(), hashlib.sha256).hexdigest()
    assert request.header("x-iii-signature") == [f"sha256={expected}"]
    assert request.header("authorization") == []
    # a fresh invocation id and timestamp per request
    assert "result" in await caller.call("ext::signed", {})
    assert receiver.requests[1].header("x-iii-invocation-id") != [invocation_id]


async def test_bearer_and_api_key_headers(
    dev_engine: EngineThread, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("III_SECRET_TEST_TOKEN", "tok-1")
    monkeypatch.setenv("III_SECRET_TEST_KEY", "key-2")
    worker = await Wire.connect(dev_engine.url, name="ext")
    await register(
        worker,
        "ext::bearer",
        {
            "url": f"{receiver.url}/b",
            "auth": {"type": "bearer", "token_key": "III_SECRET_TEST_TOKEN"},
        },
    )
    await register(
        worker,
        "ext::apikey",
        {
            "url": f"{receiver.url}/k",
            "method": "GET",
            "auth": {"type": "api_key", "header": "X-Api-Key", "value_key": "III_SECRET_TEST_KEY"},
        },
    )
    assert (await worker.call("ext::bearer", None))["result"] == {"ok": True}
    assert (await worker.call("ext::apikey", {"q": 1}))["result"] == {"ok": True}
    bearer, apikey = receiver.requests
    assert bearer.method == "POST" and bearer.body == b"null"
    assert bearer.header("authorization") == ["Bearer tok-1"]
    assert bearer.header("x-iii-signature") == []
    assert apikey.method == "GET" and json.loads(apikey.body)["q"] == 1  # GET carries the body
    assert apikey.header("x-api-key") == ["key-2"]
    assert apikey.header("authorization") == []


async def test_response_rows_through_the_engine(
    dev_engine: EngineThread, receiver: Receiver
) -> None:
    json_ct = [(b"content-type", b"application/json")]
    receiver.routes.update(
        {
            "/empty": (200, [], b""),
            "/json": (201, json_ct, b'{"n":1}'),
            "/text": (200, [(b"content-type", b"text/plain")], b"hello"),
            "/redirect-json": (302, [(b"location", b"/json")], b'{"moved":true}'),
            "/redirect": (307, [(b"location", b"/json")], b"see /json"),
            "/coded": (422, json_ct, b'{"error":{"code":"BAD_INPUT","message":"field x"}}'),
            "/partial": (403, json_ct, b'{"error":{"code":"DENIED"}}'),
            "/plain500": (500, [], b"oops"),
        }
    )
    worker = await Wire.connect(dev_engine.url, name="ext")
    for name in receiver.routes:
        await register(worker, f"ext:{name}", {"url": receiver.url + name})
    await register(worker, "ext::slow", {"url": receiver.url + "/slow", "timeout_ms": 200})
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    await register(worker, "ext::refused", {"url": f"http://127.0.0.1:{dead_port}/x"})

    async def outcome(function_id: str) -> Any:
        frame = await worker.call(function_id, {})
        if "error" in frame:
            return frame["error"]["code"], frame["error"]["message"]
        return frame.get("result")

    assert await outcome("ext:/empty") is None
    assert await outcome("ext:/json") == {"n": 1}
    assert (await outcome("ext:/text"))[0] == "invalid_response"
    assert await outcome("ext:/redirect-json") == {"moved": True}  # not followed
    assert await outcome("ext:/redirect") is None
    assert await outcome("ext:/coded") == ("BAD_INPUT", "field x")
    assert await outcome("ext:/partial") == ("DENIED", "HTTP request failed")
    assert await outcome("ext:/plain500") == ("http_error", "HTTP 500 Internal Server Error")
    code, message = await outcome("ext::slow")
    assert code == "http_request_failed" and "200 ms" in message
    code, message = await outcome("ext::refused")
    assert code == "http_request_failed" and message.startswith("HTTP request failed: ")
    assert [r.path for r in receiver.requests].count("/json") == 1  # only the direct call


async def test_body_read_failure(dev_engine: EngineThread) -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial":')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(truncated, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        worker = await Wire.connect(dev_engine.url, name="ext")
        await register(worker, "ext::broken", {"url": f"http://127.0.0.1:{port}/"})
        frame = await worker.call("ext::broken", {})
    finally:
        server.close()
        await server.wait_closed()
    assert frame["error"]["code"] == "http_response_failed", frame


async def test_call_time_validation(dev_engine: EngineThread, receiver: Receiver) -> None:
    worker = await Wire.connect(dev_engine.url, name="ext")
    await register(worker, "ext::f", {"url": receiver.url})
    assert "result" in await worker.call("ext::f", {})
    dev_engine.workers.http_functions.policy = UrlPolicy()  # as if the policy had been strict
    frame = await worker.call("ext::f", {})
    assert frame["error"] == {"code": "url_validation_failed", "message": "HTTPS is required"}
    assert len(receiver.requests) == 1


async def test_failed_registrations_give_callers_the_reason(
    engine: EngineThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("III_SECRET_TEST_MISSING", raising=False)
    worker = await Wire.connect(engine.url, name="ext")
    refused = {
        "ext::plain": {"url": "http://example.com/x"},
        "ext::local": {"url": "https://127.0.0.1/x"},
        "ext::listed": {"url": "https://[::ffff:10.1.1.1]/x"},
        "ext::noauth": {
            "url": "https://8.8.8.8/x",
            "auth": {"type": "bearer", "token_key": "III_SECRET_TEST_MISSING"},
        },
        "ext::garbage": {"url": "https://8.8.8.8/x", "method": "TRACE"},
    }
    for function_id, invocation in refused.items():  # no sync(): it would skip error frames
        await worker.send({"type": "registerfunction", "id": function_id, "invocation": invocation})
    # the registering worker is told, with an ``error`` frame per refused function
    reports = {}
    for _ in range(5):
        frame = await worker.recv_type("error")
        reports[frame["function_id"]] = frame["error"]["code"]
    assert reports == {
        "ext::plain": "url_validation_failed",
        "ext::local": "url_validation_failed",
        "ext::listed": "url_validation_failed",
        "ext::noauth": "token_not_found",
        "ext::garbage": "deserialization_error",
    }
    caller = await Wire.connect(engine.url, name="caller")

    async def error(function_id: str) -> tuple[str, str]:
        frame = await caller.call(function_id, {})
        return frame["error"]["code"], frame["error"]["message"]

    code, message = await error("ext::plain")
    assert code == "url_validation_failed"
    assert message == (
        "HTTP-invoked function ext::plain was not registered (url_validation_failed): "
        "HTTPS is required"
    )
    assert (await error("ext::local"))[1].endswith("Private IP blocked")
    assert (await error("ext::listed"))[1].endswith("Private IP blocked")
    code, message = await error("ext::noauth")
    assert code == "token_not_found" and "III_SECRET_TEST_MISSING" in message
    assert (await error("ext::garbage"))[0] == "deserialization_error"
    functions = await caller.result("engine::functions::list", {})
    assert not any(f["function_id"].startswith("ext::") for f in functions["functions"])
    # unregister forgets the failure; another worker may then take the id
    await worker.send({"type": "unregisterfunction", "id": "ext::plain"})
    await worker.sync()
    assert (await error("ext::plain"))[0] == "function_not_found"
    # a successful registration replaces it
    await worker.send({"type": "registerfunction", "id": "ext::local"})
    await worker.sync()
    await caller.invoke("ext::local", {})
    await worker.serve_one()
    assert "error" not in await caller.recv_type("invocationresult")
    # disconnect forgets the rest
    await worker.close()
    await asyncio.sleep(0.1)
    assert (await error("ext::noauth"))[0] == "function_not_found"
    assert engine.core.registry.failed_functions == {}


async def test_unregister_and_disconnect_remove_http_functions(
    dev_engine: EngineThread, receiver: Receiver
) -> None:
    worker = await Wire.connect(dev_engine.url, name="ext")
    await register(worker, "ext::a", {"url": receiver.url})
    await register(worker, "ext::b", {"url": receiver.url})
    other = await Wire.connect(dev_engine.url, name="other")
    await other.send(
        {"type": "registerfunction", "id": "ext::a", "invocation": {"url": receiver.url}}
    )
    rejected = await other.recv_type("registrationrejected")
    assert rejected["owner_worker_id"] == worker.worker_id
    await other.send({"type": "unregisterfunction", "id": "ext::a"})  # not the owner: no effect
    await other.sync()
    assert "result" in await other.call("ext::a", {})
    await worker.send({"type": "unregisterfunction", "id": "ext::a"})
    await worker.sync()
    assert (await other.call("ext::a", {}))["error"]["code"] == "function_not_found"
    assert "result" in await other.call("ext::b", {})
    await worker.close()
    await asyncio.sleep(0.1)
    assert (await other.call("ext::b", {}))["error"]["code"] == "function_not_found"


async def test_sdk_registers_http_invoked_function(
    dev_engine: EngineThread, receiver: Receiver
) -> None:
    receiver.routes["/sum"] = (200, [(b"content-type", b"application/json")], b"3")
    client = iii.III(dev_engine.url, iii.InitOptions(worker_name="sdk"))
    client.register_function(
        "sdk::sum", iii.HttpInvocationConfig(url=receiver.url + "/sum", timeout_ms=2000)
    )
    await client.connect()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while True:
            try:
                result = await client.trigger_async(
                    {"function_id": "sdk::sum", "payload": {"a": 1, "b": 2}}
                )
                break
            except iii.IIIInvocationError as exc:
                if exc.code != "function_not_found" or loop.time() > deadline:
                    raise
                await asyncio.sleep(0.02)
    finally:
        await client.shutdown_async()
    assert result == 3
    assert json.loads(receiver.requests[-1].body)["a"] == 1


def test_cli_dev_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import iii_asgi.cli as cli

    configs: list[EngineConfig] = []

    class FakeEngine:
        def __init__(self, config: EngineConfig) -> None:
            configs.append(config)

    monkeypatch.setattr(cli, "Engine", FakeEngine)
    monkeypatch.setattr(cli, "run_coroutine", lambda coro: coro.close())
    runner = CliRunner()
    assert runner.invoke(cli.main, ["engine", "--port", "0"]).exit_code == 0
    assert runner.invoke(cli.main, ["engine", "--port", "0", "--dev"]).exit_code == 0
    assert [c.local_development for c in configs] == [False, True]


async def test_engine_initiated_calls(dev_engine: EngineThread, receiver: Receiver) -> None:
    """Invoker.call (triggers, discovery, the HTTP trigger server) runs the HTTP function too."""
    worker = await Wire.connect(dev_engine.url, name="ext")
    await register(worker, "ext::ok", {"url": receiver.url})
    await register(worker, "ext::bad", {"url": "ftp://example.com/"})
    assert dev_engine.loop is not None
    invoker = dev_engine.core.invoker

    def call(function_id: str) -> Any:
        future = asyncio.run_coroutine_threadsafe(
            invoker.call(function_id, {"x": 1}), dev_engine.loop
        )
        return asyncio.wrap_future(future)

    assert await call("ext::ok") == {"ok": True}
    assert json.loads(receiver.requests[0].body) == {"x": 1}  # no _caller_worker_id
    with pytest.raises(InvocationError) as info:
        await call("ext::bad")
    assert (info.value.code, info.value.message[-11:]) == ("url_validation_failed", "Invalid URL")
    assert dev_engine.core.registry.functions[("default", "ext::ok")].in_process
    await worker.silent(0.05)


async def test_http_trigger_routes_to_an_http_invoked_function(
    dev_engine: EngineThread, receiver: Receiver
) -> None:
    """An ``http`` trigger bound to an HTTP-invoked function runs it in the engine (it is
    owned by the worker, but the worker would only answer ``function_not_invokable``)."""
    receiver.routes["/hook"] = (
        200,
        [(b"content-type", b"application/json")],
        b'{"status_code":201,"body":{"via":"receiver"}}',
    )
    async with http_worker(dev_engine) as client:
        client.register_function("ext::hook", iii.HttpInvocationConfig(url=receiver.url + "/hook"))
        client.register_trigger(
            {"type": "http", "function_id": "ext::hook", "config": {"api_path": "/hook"}}
        )
        await routed(dev_engine)
        async with http_client(dev_engine) as web:
            response = await web.get("/hook?x=1")
    assert (response.status_code, response.json()) == (201, {"via": "receiver"})
    assert json.loads(receiver.requests[-1].body)["query_params"] == {"x": "1"}


async def test_http_trigger_reports_a_failed_http_function_registration(
    dev_engine: EngineThread,
) -> None:
    async with http_worker(dev_engine) as client:
        client.register_function("ext::bad", iii.HttpInvocationConfig(url="ftp://example.com/"))
        client.register_trigger(
            {"type": "http", "function_id": "ext::bad", "config": {"api_path": "/bad"}}
        )
        await routed(dev_engine)
        async with http_client(dev_engine) as web:
            response = await web.get("/bad")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "url_validation_failed"
