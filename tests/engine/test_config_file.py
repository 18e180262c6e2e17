"""The YAML engine config file (builtins.md §13) and ``iii-asgi engine --config``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from iii_asgi.engine.config.adapters import AdapterConfig
from iii_asgi.engine.config.engine import CorsConfig, HttpMiddleware
from iii_asgi.engine.config.file import ConfigError, config_from_mapping, expand_env, load_config
from tests.processes import run as run_process

FULL = """
registration_namespace_grace_ms: 750
storage:
  data_dir: ${DATA:./data}
workers:
  - name: iii-worker-manager
    config: {host: 0.0.0.0, port: 40000, handshake_timeout_ms: 10000}
  - name: iii-http
    config:
      host: 127.0.0.2
      port: 0
      default_timeout: 1500
      concurrency_request_limit: 8
      cors: {allowed_origins: ["https://app.example"], allowed_methods: [GET]}
      middleware:
        - {function_id: mw::b, priority: 5}
        - {function_id: mw::a, phase: preHandler, priority: -1}
  - name: stream
    config: {host: 127.0.0.3, port: 4000, auth_function: auth::stream}
  - name: iii-state
    config: {triggers_enabled: false, max_value_bytes: 100}
  - name: iii-observability
    config: {anything: goes}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_full_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA", str(tmp_path / "store"))
    config = load_config(write(tmp_path, FULL))
    assert config.registration_grace_ms == 750
    assert (config.host, config.port) == ("0.0.0.0", 40000)
    assert (config.http_host, config.http_port) == ("127.0.0.2", 0)
    assert config.http_default_timeout_ms == 1500
    assert config.http_concurrency_limit == 8
    assert config.http_cors == CorsConfig(["https://app.example"], ["GET"])
    assert config.http_middleware == [
        HttpMiddleware("mw::a", "preHandler", -1),
        HttpMiddleware("mw::b", "preHandler", 5),
    ]
    assert (config.stream_host, config.stream_port) == ("127.0.0.3", 4000)
    assert config.stream_auth_function == "auth::stream"
    assert config.state_triggers_enabled is False
    assert config.state_max_value_bytes == 100
    assert config.data_dir == str(tmp_path / "store")


def test_overrides_win(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "workers: []\n"), port=0, http_port=0)
    assert (config.port, config.http_port) == (0, 0)
    with pytest.raises(TypeError, match="no option"):
        load_config(write(tmp_path, "workers: []\n"), nonsense=1)


def test_listed_workers_only(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "workers: []\n"))
    assert config.http_port is None  # no iii-http entry: no HTTP server (§13.2)
    assert config.stream_port is None
    assert config.data_dir is None
    empty = load_config(write(tmp_path, ""))
    assert empty.http_port is None
    defaults = load_config(write(tmp_path, "workers: [{name: http}, {name: iii-stream}]\n"))
    assert (defaults.http_port, defaults.stream_port) == (3111, 3112)


def test_adapter_blocks_pick_each_workers_adapter(tmp_path: Path) -> None:
    text = """
workers:
  - name: iii-state
    config:
      adapter: {name: kv, config: {store_method: file_based, file_path: ./data/state_store.db}}
  - name: iii-stream
    config:
      adapter: {name: redis, config: {redis_url: "redis://r1:6379/2"}}
  - name: iii-queue
    config:
      adapter: {name: builtin, config: {store_method: file_based, file_path: ./data/queue_store}}
  - name: iii-pubsub
    config: {adapter: {name: redis}}
  - name: iii-cron
    config: {adapter: {name: redis, config: {key_prefix: "app:", lock_ttl_ms: 1000}}}
"""
    config = load_config(write(tmp_path, text))
    assert config.data_dir == "data"  # both file stores name ./data: the engine's one store
    assert config.state_adapter == config.queue_adapter == AdapterConfig()
    assert config.stream_adapter == AdapterConfig("redis", redis_url="redis://r1:6379/2")
    assert config.pubsub_adapter == AdapterConfig("redis")  # the real engine's default URL
    assert config.pubsub_adapter.redis_url == "redis://localhost:6379"
    assert config.cron_adapter == AdapterConfig("redis", key_prefix="app:")
    assert config.cron_lock_ttl_ms == 1000
    queue = "adapter: {name: redis, config: {visibility_timeout_ms: 5000}}"
    on_redis = load_config(write(tmp_path, f"workers: [{{name: queue, config: {{{queue}}}}}]\n"))
    assert on_redis.queue_adapter.is_redis and on_redis.queue_visibility_timeout_ms == 5000
    local = "workers: [{name: pubsub, config: {adapter: {name: local}}}, {name: cron}]\n"
    assert load_config(write(tmp_path, local)).pubsub_adapter == AdapterConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope: 1\n", "unknown top-level key"),
        ("- a\n", "top level must be a mapping"),
        ("workers: [{name: iii-redis}]\n", "'iii-redis' is not provided"),
        ("workers: [{name: iii-http}, {name: http}]\n", "listed twice"),
        ("workers: [{name: iii-http, image: x}]\n", "'image' is not allowed"),
        ("workers: [{name: iii-http, config: {prot: 1}}]\n", r"workers\[0\].config: unknown key"),
        ("workers: [{name: iii-http, config: {port: 70000}}]\n", "port number"),
        ("workers: [{name: iii-http, config: {port: '1'}}]\n", "integer"),
        ("workers: [{name: iii-worker-manager, config: {rbac: {auth: x}}}]\n", "unknown key"),
        ("workers: [{name: iii-state, config: {triggers_enabled: 1}}]\n", "true or false"),
        (
            "workers: [{name: iii-state, config: {adapter: {name: bridge}}}]\n",
            r"workers\[0\].config.adapter.name 'bridge' is not provided .*'kv', 'redis'",
        ),
        (
            "workers: [{name: queue, config: {adapter: {name: rabbitmq}}}]\n",
            r"workers\[0\].config.adapter.name 'rabbitmq' is not provided .*'builtin', 'redis'",
        ),
        (
            "workers: [{name: iii-pubsub, config: {adapter: {name: kv}}}]\n",
            "'kv' is not provided",
        ),
        (
            "workers: [{name: iii-stream, config: {adapter: {name: redis, config: {url: x}}}}]\n",
            r"workers\[0\].config.adapter.config: unknown key\(s\): url",
        ),
        (
            "workers: [{name: cron, config: {adapter: {name: redis, config: {lock_ttl_ms: 0}}}}]\n",
            "lock_ttl_ms must be an integer >= 1",
        ),
        (
            "storage: {data_dir: a}\nworkers: [{name: iii-state, config: {adapter: "
            "{config: {store_method: file_based, file_path: b/x.db}}}}]\n",
            "one store",
        ),
        ("workers: [{name: http, config: {middleware: [{priority: 1}]}}]\n", "function_id"),
        ("workers: {name: http}\n", "workers must be a list"),
        ("a: [\n", "invalid YAML"),
        ("storage: {data_dir: ${III_SURELY_UNSET_VARIABLE}}\n", "III_SURELY_UNSET_VARIABLE"),
    ],
)
def test_bad_files_raise_config_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_modules_alias_is_merged() -> None:
    config = config_from_mapping({"modules": [{"name": "iii-http", "config": {"port": 1}}]})
    assert config.http_port == 1


def test_expand_env() -> None:
    env = {"A": "1"}
    assert expand_env("${A} ${B:two} ${C:-x}", env) == "1 two -x"  # ':-' is not bash syntax
    assert expand_env("${V:__III_ENGINE_VERSION__}", {}) not in ("", "__III_ENGINE_VERSION__")
    with pytest.raises(ConfigError, match="B is not set"):
        expand_env("${B}", env)


def test_cli_reports_a_bad_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, "nope: 1\n")
    result = run_process(
        [sys.executable, "-m", "iii_asgi", "engine", "--config", str(path)],
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert result.returncode == 2
    assert "unknown top-level key(s): nope" in result.stderr
