"""HTTP-invoked functions, the operator's side (docs/security.md): which environment variables
may be secrets, the ``iii-http-functions`` config entry, and one write per small request."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx
import pytest
import yaml
from engine_wire import Wire

from iii_asgi.engine import EngineConfig, EngineThread
from iii_asgi.engine.config.file import ConfigError, config_from_mapping, expand_env
from iii_asgi.engine.workers.http_functions.transport import FLUSH_BYTES, OneWriteTransport

# -- a receiver that reads each request with one read() -----------------------------------------


@dataclass
class OneRead:
    """A raw HTTP/1.1 server that reads once per connection, keeps what that one ``read()``
    returned, answers ``{"ok":true}`` and closes."""

    url: str = ""
    first_reads: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.first_reads.append(await reader.read(1 << 20))
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n"
            b'connection: close\r\n\r\n{"ok":true}'
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def one_read() -> AsyncIterator[OneRead]:
    receiver = OneRead()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    yield receiver
    server.close()
    await server.wait_closed()


def split(request: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")[1:]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return headers, body


async def register(wire: Wire, function_id: str, invocation: dict[str, Any]) -> dict[str, Any]:
    """Register an HTTP-invoked function; the ``error`` frame if refused, else ``{}``."""
    await wire.send({"type": "registerfunction", "id": function_id, "invocation": invocation})
    await wire.send({"type": "ping"})
    while True:
        frame = await wire.recv()
        if frame["type"] == "error":
            await wire.recv_type("pong")
            return frame
        if frame["type"] == "pong":
            return {}


# -- secrets --------------------------------------------------------------------------------------


async def test_secrets_only_from_allowed_variables(
    engine_factory: Callable[..., EngineThread],
    one_read: OneRead,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("III_SECRET_HOOK_TOKEN", "allowed-token")
    monkeypatch.setenv("CLOUD_API_KEY", "must-not-leak")
    engine = engine_factory(local_development=True)  # default allow-list: III_SECRET_*
    worker = await Wire.connect(engine.url, name="ext")
    url = one_read.url + "/hook"
    for function_id, auth in (
        ("ext::home", {"type": "bearer", "token_key": "HOME"}),
        ("ext::cloud", {"type": "hmac", "secret_key": "CLOUD_API_KEY"}),
        ("ext::key", {"type": "api_key", "header": "x-key", "value_key": "PATH"}),
    ):
        error = await register(worker, function_id, {"url": url, "auth": auth})
        assert error["error"]["code"] == "secret_not_allowed", error
        assert "allowed: III_SECRET_*" in error["error"]["message"]
        frame = await worker.call(function_id, {})
        assert frame["error"]["code"] == "secret_not_allowed"
    assert one_read.first_reads == []  # nothing was ever sent
    # a name the allow-list admits works; a missing one is still token_not_found
    allowed = {"type": "bearer", "token_key": "III_SECRET_HOOK_TOKEN"}
    assert await register(worker, "ext::ok", {"url": url, "auth": allowed}) == {}
    assert (await worker.call("ext::ok", {"a": 1}))["result"] == {"ok": True}
    headers, _ = split(one_read.first_reads[0])
    assert headers["authorization"] == "Bearer allowed-token"
    missing = {"type": "bearer", "token_key": "III_SECRET_NOT_SET"}
    error = await register(worker, "ext::missing", {"url": url, "auth": missing})
    assert error["error"]["code"] == "token_not_found"


async def test_operator_sets_the_secret_allow_list(
    engine_factory: Callable[..., EngineThread],
    one_read: OneRead,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APP_WEBHOOK_SECRET", "s")
    monkeypatch.setenv("III_SECRET_X", "x")
    engine = engine_factory(local_development=True, http_functions_secret_env=["APP_*"])
    worker = await Wire.connect(engine.url, name="ext")
    app = {"type": "hmac", "secret_key": "APP_WEBHOOK_SECRET"}
    assert await register(worker, "ext::app", {"url": one_read.url, "auth": app}) == {}
    default = {"type": "hmac", "secret_key": "III_SECRET_X"}
    error = await register(worker, "ext::default", {"url": one_read.url, "auth": default})
    assert error["error"]["code"] == "secret_not_allowed"
    none = engine_factory(local_development=True, http_functions_secret_env=[])
    worker = await Wire.connect(none.url, name="ext")
    error = await register(worker, "ext::app", {"url": one_read.url, "auth": app})
    assert "allowed: none" in error["error"]["message"]


def test_cli_secret_env_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import iii_asgi.cli as cli

    configs: list[EngineConfig] = []
    monkeypatch.setattr(cli, "Engine", lambda config: configs.append(config))
    monkeypatch.setattr(cli, "run_coroutine", lambda coro: coro.close())
    runner = CliRunner()
    for args in ([], ["--secret-env", "APP_*", "--secret-env", "OTHER"], ["--secret-env", ""]):
        assert runner.invoke(cli.main, ["engine", "--port", "0", *args]).exit_code == 0
    assert [c.http_functions_secret_env for c in configs] == [
        ["III_SECRET_*"],
        ["APP_*", "OTHER"],
        [],
    ]


# -- the iii-http-functions config entry ---------------------------------------------------------

#: The shape of the official SDK test configuration (sdk/fixtures/config-test.yaml in iii-hq/iii)
#: without its second, RBAC worker-manager (RBAC listeners are another change).
SDK_TEST_CONFIG = """
workers:
  - name: configuration
    config:
      adapter: {name: fs, config: {directory: ./data/config-test-configuration}}
  - name: iii-worker-manager
    config: {port: 49199}
  - name: iii-stream
    config:
      port: ${STREAMS_PORT:3112}
      host: 0.0.0.0
      adapter: {name: kv, config: {store_method: file_based, file_path: ./data/stream_store}}
  - name: iii-http-functions
    config:
      security:
        url_allowlist:
          - localhost
          - 127.0.0.1
        block_private_ips: false
        require_https: false
"""


def sdk_test_config() -> EngineConfig:
    """The configuration above, ``${STREAMS_PORT:3112}`` expanded to 0."""
    return config_from_mapping(yaml.safe_load(expand_env(SDK_TEST_CONFIG, {"STREAMS_PORT": "0"})))


def test_the_sdk_test_configuration_parses() -> None:
    config = sdk_test_config()
    assert config.http_functions_enabled
    assert config.http_functions_url_allowlist == ["localhost", "127.0.0.1"]
    assert config.http_functions_block_private_ips is False
    assert config.http_functions_require_https is False
    assert config.http_functions_secret_env == ["III_SECRET_*"]
    assert config.port == 49199
    assert config.stream_port == 0


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"timeout": 1}, "unknown key(s): timeout"),
        ({"security": {"block_private_ips": "no"}}, "block_private_ips must be true or false"),
        ({"security": {"url_allowlist": "x"}}, "url_allowlist must be a list"),
        ({"security": {"secret_env_allowlist": [1]}}, "secret_env_allowlist[0]"),
    ],
)
def test_bad_http_functions_blocks(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_mapping({"workers": [{"name": "iii-http-functions", "config": block}]})


def test_http_functions_options_from_a_file() -> None:
    security = {"url_allowlist": [], "secret_env_allowlist": ["APP_*"]}
    listed = {"workers": [{"name": "iii-http-functions", "config": {"security": security}}]}
    config = config_from_mapping(listed)
    assert config.http_functions_url_allowlist == ["*"]  # empty means any (§4.1)
    assert config.http_functions_secret_env == ["APP_*"]
    assert (config.http_functions_block_private_ips, config.http_functions_require_https) == (
        True,
        True,
    )
    assert not config_from_mapping({"workers": []}).http_functions_enabled  # not listed: off


async def test_a_file_config_drives_registration(
    engine_factory: Callable[..., EngineThread], one_read: OneRead
) -> None:
    parsed = sdk_test_config()
    options = {
        name: getattr(parsed, name)
        for name in (
            "http_functions_enabled",
            "http_functions_url_allowlist",
            "http_functions_block_private_ips",
            "http_functions_require_https",
        )
    }
    engine = engine_factory(**options)
    worker = await Wire.connect(engine.url, name="sdk")
    assert await register(worker, "sdk::local", {"url": one_read.url}) == {}
    error = await register(worker, "sdk::far", {"url": "http://example.com/x"})
    assert error["error"]["message"].endswith("URL not in allowlist")
    disabled = engine_factory(http_functions_enabled=False)
    worker = await Wire.connect(disabled.url, name="sdk")
    error = await register(worker, "sdk::local", {"url": one_read.url})
    assert error["error"]["code"] == "HTTP_FUNCTIONS_DISABLED"


# -- one write per request ----------------------------------------------------------------------


async def test_a_small_request_arrives_in_the_first_read(
    engine_factory: Callable[..., EngineThread], one_read: OneRead
) -> None:
    """The receiver's single read() holds the request line, every header and the whole body
    (protocol.md §4.2: sent as one HTTP/1.1 message, as the real engine's hyper does)."""
    engine = engine_factory(local_development=True)
    worker = await Wire.connect(engine.url, name="ext")
    assert await register(worker, "ext::one", {"url": one_read.url + "/in", "method": "PUT"}) == {}
    payload = {"text": "x" * 2000, "n": [1, 2, 3]}
    for _ in range(3):
        assert (await worker.call("ext::one", payload))["result"] == {"ok": True}
    assert len(one_read.first_reads) == 3
    for request in one_read.first_reads:
        assert request.startswith(b"PUT /in HTTP/1.1\r\n")
        headers, body = split(request)
        assert int(headers["content-length"]) == len(body)
        assert json.loads(body) == {**payload, "_caller_worker_id": worker.worker_id}


class Writes(httpcore.AsyncNetworkBackend):
    """httpcore's AnyIO backend, recording every ``write()`` that reaches a socket."""

    def __init__(self) -> None:
        self.backend = httpcore.AnyIOBackend()
        self.writes: list[bytes] = []

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        stream = await self.backend.connect_tcp(*args, **kwargs)
        real_write = stream.write

        async def write(buffer: bytes, timeout: float | None = None) -> None:
            self.writes.append(buffer)
            await real_write(buffer, timeout)

        stream.write = write  # type: ignore[method-assign]
        return stream


@pytest.mark.parametrize("size", [10, 30_000, 200_000])
async def test_the_transport_writes_a_request_once(one_read: OneRead, size: int) -> None:
    writes = Writes()
    async with httpx.AsyncClient(transport=OneWriteTransport(backend=writes)) as client:
        response = await client.post(one_read.url + "/x", content=b"b" * size)
    assert response.json() == {"ok": True}
    [sent] = writes.writes
    assert sent.startswith(b"POST /x HTTP/1.1\r\n") and sent.endswith(b"\r\n\r\n" + b"b" * size)


async def test_a_streamed_body_leaves_in_64_kib_pieces(one_read: OneRead) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"c" * 16_384

    writes = Writes()
    async with httpx.AsyncClient(transport=OneWriteTransport(backend=writes)) as client:
        response = await client.post(one_read.url + "/x", content=chunks())
    assert response.json() == {"ok": True}
    assert 2 <= len(writes.writes) <= 4
    assert all(len(w) >= FLUSH_BYTES for w in writes.writes[:-1])
    assert b"".join(writes.writes).count(b"c" * 16_384) == 10
