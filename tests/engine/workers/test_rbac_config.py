"""Worker-manager listeners in the config file (builtins.md §13), ``EngineConfig`` and the
``iii-asgi engine`` flags; the pure RBAC matching rules (protocol.md §8.2, §8.3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iii_asgi.engine import EngineConfig, EngineThread
from iii_asgi.engine.config import FunctionFilter, RbacConfig, WorkerListenerConfig
from iii_asgi.engine.config.file import ConfigError, config_from_mapping, load_config
from iii_asgi.engine.workers.worker_manager.rbac import (
    PERMISSIVE,
    Access,
    AuthError,
    AuthResult,
    Exposure,
    glob,
    grant_matches,
)
from tests.processes import kill_group, popen

#: The shape of the official SDK test configuration (iii repository,
#: ``sdk/fixtures/config-test.yaml``): an ``fs`` configuration adapter, the main worker manager,
#: a second one named ``#rbac`` with middleware, hooks and both filter forms, a stream worker
#: with an env-expanded port and a file-based kv adapter.
WORKER_MANAGER_PART = """
workers:
  - name: configuration
    config:
      adapter:
        name: fs
        config:
          directory: ./data/config-dir

  - name: iii-worker-manager
    config:
      port: 49299

  - name: iii-worker-manager#rbac
    config:
      host: 0.0.0.0
      port: 49235
      middleware_function_id: acme::middleware
      rbac:
        auth_function_id: acme::auth
        on_function_registration_function_id: acme::on-function
        on_trigger_registration_function_id: acme::on-trigger
        on_trigger_type_registration_function_id: acme::on-trigger-type
        expose_functions:
          - match("acme::public::*")
          - match("engine::functions::list")
          - metadata:
              acme_public: true

  - name: iii-stream
    config:
      port: ${ACME_STREAMS_PORT:3212}
      host: 0.0.0.0
      adapter:
        name: kv
        config:
          store_method: file_based
          file_path: ./data/stream_store
"""

HTTP_FUNCTIONS_PART = """
  - name: iii-http-functions
    config:
      security:
        url_allowlist:
          - localhost
          - 127.0.0.1
        block_private_ips: false
        require_https: false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_the_official_test_configuration_worker_managers(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, WORKER_MANAGER_PART))
    assert (config.host, config.port, config.rbac, config.middleware_function_id) == (
        "127.0.0.1",
        49299,
        None,
        None,
    )
    [rbac] = config.worker_listeners
    assert (rbac.name, rbac.host, rbac.port) == ("rbac", "0.0.0.0", 49235)
    assert rbac.middleware_function_id == "acme::middleware"
    assert rbac.handshake_timeout_ms == 10000
    assert rbac.rbac == RbacConfig(
        auth_function_id="acme::auth",
        expose_functions=[
            FunctionFilter(match="acme::public::*"),
            FunctionFilter(match="engine::functions::list"),
            FunctionFilter(metadata={"acme_public": True}),
        ],
        on_function_registration_function_id="acme::on-function",
        on_trigger_registration_function_id="acme::on-trigger",
        on_trigger_type_registration_function_id="acme::on-trigger-type",
    )
    assert (config.stream_host, config.stream_port, config.data_dir) == ("0.0.0.0", 3212, "data")
    names = [c.port for c in config.listener_configs()]
    assert names == [49299, 49235]


def test_the_whole_official_test_configuration(tmp_path: Path) -> None:
    """Lights up once the ``iii-http-functions`` entry is read (issue 12, item 7)."""
    try:
        config = load_config(write(tmp_path, WORKER_MANAGER_PART + HTTP_FUNCTIONS_PART))
    except ConfigError as exc:
        if "iii-http-functions" in str(exc):
            pytest.skip(f"iii-http-functions is not read yet: {exc}")
        raise
    assert len(config.worker_listeners) == 1


def test_an_rbac_main_listener_and_more_listeners() -> None:
    config = config_from_mapping(
        {
            "workers": [
                {
                    "name": "iii-worker-manager",
                    "config": {
                        "port": 1,
                        "handshake_timeout_ms": 500,
                        "allowed_origins": ["https://a.example"],
                        "rbac": {"expose_functions": [{"match": "x::*", "namespace": "n"}]},
                    },
                },
                {"name": "iii-worker-manager", "config": {"port": 2}},
                {"name": "iii-worker-manager#edge", "config": {"port": 3, "host": "::1"}},
                {"name": "stream", "config": {"allowed_origins": ["https://s.example"]}},
            ]
        }
    )
    assert config.handshake_timeout_ms == 500
    assert config.allowed_origins == ["https://a.example"]
    assert config.rbac == RbacConfig(expose_functions=[FunctionFilter(match="x::*", namespace="n")])
    assert [(w.name, w.host, w.port) for w in config.worker_listeners] == [
        ("1", "127.0.0.1", 2),
        ("edge", "::1", 3),
    ]
    assert config.stream_allowed_origins == ["https://s.example"]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"rbac": {"auth": "x"}}, r"rbac: unknown key\(s\): auth"),
        ({"rbac": {"expose_functions": ["api::*"]}}, r"expose_functions\[0\]: expected match"),
        (
            {"rbac": {"expose_functions": [{"match": "a", "namespce": "b"}]}},
            "unknown key 'namespce' in expose_functions filter",
        ),
        ({"rbac": {"expose_functions": [{"match": "a", "metadata": {"b": 1}}]}}, "not both"),
        ({"rbac": {"expose_functions": [{"namespace": "a"}]}}, "'match' or 'metadata'"),
        ({"rbac": {"auth_function_id": 3}}, "auth_function_id must be a non-empty string"),
        ({"rbac": {"expose_functions": "x"}}, "expose_functions must be a list"),
        ({"handshake_timeout_ms": 0}, "handshake_timeout_ms must be an integer >= 1"),
        ({"allowed_origins": "x"}, "allowed_origins must be a list"),
        ({"middleware_function_id": ""}, "middleware_function_id must be a non-empty string"),
    ],
)
def test_bad_worker_manager_blocks(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping({"workers": [{"name": "iii-worker-manager", "config": block}]})


def test_a_further_listener_needs_a_port() -> None:
    workers = [{"name": "iii-worker-manager"}, {"name": "iii-worker-manager#x", "config": {}}]
    with pytest.raises(ConfigError, match=r"workers\[1\].config.port is required"):
        config_from_mapping({"workers": workers})


def test_other_workers_are_still_listed_once() -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        config_from_mapping({"workers": [{"name": "iii-state"}, {"name": "iii-state#2"}]})


def test_engine_config_listener_configs() -> None:
    rbac = RbacConfig(expose_functions=['match("a::*")', {"metadata": {"p": True}}])
    assert rbac.expose_functions == [
        FunctionFilter(match="a::*"),
        FunctionFilter(metadata={"p": True}),
    ]
    extra = WorkerListenerConfig(port=0, rbac=rbac)
    config = EngineConfig(port=5, handshake_timeout_ms=7, worker_listeners=[extra])
    main, second = config.listener_configs()
    assert (main.port, main.handshake_timeout_ms, main.rbac, main.name) == (5, 7, None, None)
    assert second is extra
    with pytest.raises(ValueError, match="expected match"):
        RbacConfig(expose_functions=["a::*"])


# -- the matching rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("hello::world", "hello::world", True),
        ("hello::world", "hello::worldx", False),
        ("engine::*", "engine::a::b", True),
        ("*::public", "x::y::public", True),
        ("*public*", "public", True),
        ("api::*::read", "api::users::read", True),
        ("api::*::read", "api::users::write", False),
        ("*", "", True),
        ("a.b", "axb", False),  # only * is special
        ("a*a", "a", False),
    ],
)
def test_glob(pattern: str, value: str, expected: bool) -> None:
    assert (glob(pattern).fullmatch(value) is not None) is expected


def test_grants_accept_both_spellings() -> None:
    for grant in ("svc::*", 'match("svc::*")', "match('svc::*')"):
        assert grant_matches(grant, "svc::get")
        assert not grant_matches(grant, "other::get")
    assert grant_matches('match("svc::get")', "svc::get")


def test_metadata_values_are_compared_as_json() -> None:
    exposure = Exposure([FunctionFilter(metadata={"public": True, "n": [1, {"a": False}]})])
    assert exposure.matches("f", "default", {"public": True, "n": [1, {"a": False}], "x": 0})
    assert not exposure.matches("f", "default", {"public": 1, "n": [1, {"a": False}]})
    assert not exposure.matches("f", "default", {"public": True, "n": [1, {"a": 0}]})
    assert not exposure.matches("f", "default", None)
    assert not exposure.matches("f", "orders", {"public": True, "n": [1, {"a": False}]})


def test_access_order_of_evaluation() -> None:
    exposure = Exposure([FunctionFilter(match="*")])
    auth = AuthResult(forbidden_functions=frozenset({"engine::log::info", "x"}))
    access = Access(exposure, auth)
    assert access.denial("x", "default", None) == (
        "function 'x' not allowed (remove from rbac.forbidden_functions)"
    )
    assert not access.allows("engine::log::info", "default", None)  # forbidden beats infra
    assert access.allows("y", "default", None)
    closed = Access(Exposure([]), PERMISSIVE)
    assert closed.allows("engine::baggage::get_all", "tenant", None)
    assert closed.denial("y", "default", None) == (
        "function 'y' not allowed (add to rbac.expose_functions)"
    )
    assert Access(None, PERMISSIVE).allows("anything", "anywhere", None)  # no rbac block


def test_auth_result_parsing() -> None:
    official_default = {
        "namespaces": {},
        "allowed_functions": [],
        "forbidden_functions": [],
        "allowed_trigger_types": None,
        "allow_trigger_type_registration": False,
        "allow_function_registration": True,
        "function_registration_prefix": None,
        "context": {},
    }
    assert AuthResult.parse(official_default) == AuthResult()
    parsed = AuthResult.parse({"allowed_trigger_types": ["http"], "context": None, "extra": 1})
    assert parsed.allowed_trigger_types == frozenset({"http"}) and parsed.context is None
    assert PERMISSIVE.allow_trigger_type_registration
    for bad in ({"namespaces": {"a": "b"}}, {"function_registration_prefix": 1}, []):
        with pytest.raises(AuthError):
            AuthResult.parse(bad)


# -- the command line ---------------------------------------------------------------------------


def _engine(*flags: str) -> subprocess.Popen[str]:
    return popen(
        [
            *(sys.executable, "-m", "iii_asgi", "engine", "--port", "0"),
            *("--http-port", "off", "--stream-port", "off", "--console-port", "off", *flags),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def test_cli_opens_an_rbac_listener() -> None:
    proc = _engine("--rbac-port", "0", "--auth-function", "a::auth", "--expose-function", "api::*")
    try:
        assert proc.stdout is not None
        main = proc.stdout.readline()
        extra = proc.stdout.readline()
        assert main.startswith("iii engine listening on ws://127.0.0.1:"), main
        assert extra.startswith("iii worker listener on ws://127.0.0.1:"), extra
        assert main.split()[-1] != extra.split()[-1]
    finally:
        kill_group(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_cli_refuses_rbac_options_without_a_port() -> None:
    proc = _engine("--expose-function", "api::*")
    try:
        _out, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode == 2
    assert "--expose-function needs --rbac-port" in err


def test_engine_thread_from_flags_equivalent() -> None:
    """What the flags build, run in process: the RBAC listener gates, the main one does not."""
    listener = WorkerListenerConfig(
        port=0, rbac=RbacConfig(expose_functions=[FunctionFilter(match="api::*")]), name="rbac"
    )
    config = EngineConfig(port=0, http_port=None, worker_listeners=[listener])
    with EngineThread(config) as engine:
        assert engine.engine.listeners.keys() >= {"worker", "worker#rbac"}
        assert len(engine.worker_urls) == 2
