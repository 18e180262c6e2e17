"""The official ``iii-sdk==0.25.0`` client as an untrusted worker on our RBAC listener
(protocol.md §8): authenticated by a function of a trusted worker (our SDK, main port), it calls
an exposed function, gets FORBIDDEN for a private one, sees a filtered function list, and its
registrations pass through the hooks and the prefix."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from official import run_official

from iii import IIIInvocationError, InitOptions, register_worker
from iii_asgi.engine import EngineThread
from iii_asgi.engine.config import RbacConfig, WorkerListenerConfig
from tests.helpers import call_until_found, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("official_sdk")]

UNTRUSTED = r"""
import json, time
from iii import register_worker, InitOptions

import os
headers = {"x-test-token": os.environ.get("TEST_TOKEN", "valid")}
iii = register_worker(options=InitOptions(worker_name="untrusted", headers=headers))

def show(label, fn):
    try:
        print(label, json.dumps({"result": fn()}), flush=True)
    except Exception as exc:
        error = {"type": type(exc).__name__, "code": getattr(exc, "code", None),
                 "message": getattr(exc, "message", str(exc))}
        print(label, json.dumps({"error": error}), flush=True)

exposed = {"function_id": "acme::public::echo", "payload": {"msg": "hi"}}
show("EXPOSED", lambda: iii.trigger(exposed))
show("PRIVATE", lambda: iii.trigger({"function_id": "acme::private", "payload": {}}))
iii.register_function("mine::hello", lambda data: {"hello": data.get("name")})
iii.register_function("denied::nope", lambda data: {})
iii.register_trigger({"type": "subscribe", "function_id": "mine::hello",
                      "config": {"topic": "greetings"}})
listing = {"function_id": "engine::functions::list", "payload": {}}
show("LISTED", lambda: sorted(f["function_id"] for f in iii.trigger(listing)["functions"]))
print("REGISTERED", flush=True)
time.sleep(120)
"""


class Operator:
    """The trusted side: our SDK on the main port with the auth function, the hooks and the
    target functions; records every hook input."""

    def __init__(self, url: str) -> None:
        self.auth: list[Any] = []
        self.function_hooks: list[Any] = []
        self.trigger_hooks: list[Any] = []
        self.client = register_worker(url, InitOptions(worker_name="operator"))
        functions: dict[str, Callable[[Any], Any]] = {
            "acme::auth": self.check,
            "acme::on-function": self.on_function,
            "acme::on-trigger": self.on_trigger,
            "acme::private": lambda _data: {"private": True},
            "acme::public::echo": lambda data: {"echoed": data["msg"]},
        }
        for function_id, handler in functions.items():
            self.client.register_function(function_id, handler)

    def check(self, data: Any) -> Any:
        self.auth.append(data)
        if data["headers"].get("x-test-token") != "valid":
            raise PermissionError("invalid token")
        return {"context": {"user": "u1"}, "function_registration_prefix": "ext"}

    def on_function(self, data: Any) -> Any:
        self.function_hooks.append(data)
        if data["function_id"].startswith("denied::"):
            raise PermissionError("denied function registration")
        return {"description": f"approved for {data['context']['user']}"}

    def on_trigger(self, data: Any) -> Any:
        self.trigger_hooks.append(data)
        return {"config": {"topic": "approved-" + data["config"]["topic"]}}


@pytest.fixture
def rbac_engine(engine_factory: Callable[..., EngineThread]) -> EngineThread:
    rbac = RbacConfig(
        auth_function_id="acme::auth",
        expose_functions=[
            'match("acme::public::*")',
            'match("ext::*")',
            'match("engine::functions::list")',
        ],
        on_function_registration_function_id="acme::on-function",
        on_trigger_registration_function_id="acme::on-trigger",
    )
    return engine_factory(worker_listeners=[WorkerListenerConfig(port=0, rbac=rbac)])


@pytest.fixture
def operator(rbac_engine: EngineThread) -> Iterator[Operator]:
    op = Operator(rbac_engine.url)
    call_until_found(op.client, {"function_id": "acme::public::echo", "payload": {"msg": "x"}})
    yield op
    op.client.shutdown()


def _answer(line: str) -> Any:
    return json.loads(line.split(" ", 1)[1])


def test_official_untrusted_worker(rbac_engine: EngineThread, operator: Operator) -> None:
    with run_official(UNTRUSTED, rbac_engine.worker_urls[1]) as proc:
        assert _answer(proc.wait_for("EXPOSED")) == {"result": {"echoed": "hi"}}
        private = _answer(proc.wait_for("PRIVATE"))["error"]
        assert private["code"] == "FORBIDDEN"
        assert private["message"] == (
            "function 'acme::private' not allowed (add to rbac.expose_functions)"
        )
        listed = _answer(proc.wait_for("LISTED"))["result"]
        assert "acme::public::echo" in listed and "ext::mine::hello" in listed
        assert not {"acme::private", "acme::auth", "ext::denied::nope"} & set(listed)
        proc.wait_for("REGISTERED")

        [auth] = operator.auth
        assert auth["headers"]["x-test-token"] == "valid"
        assert auth["ip_address"] == "127.0.0.1"
        client = operator.client
        # the operator reaches the worker's function under its prefixed id
        hello = {"function_id": "ext::mine::hello", "payload": {"name": "bob"}}
        assert call_until_found(client, hello) == {"hello": "bob"}
        ids = [h["function_id"] for h in operator.function_hooks]
        assert ids == ["mine::hello", "denied::nope"]  # as sent, before the prefix
        assert operator.function_hooks[0]["context"] == {"user": "u1"}
        assert operator.function_hooks[0]["namespace"] == "default"
        info = client.trigger(
            {
                "function_id": "engine::functions::info",
                "payload": {"function_id": "ext::mine::hello"},
            }
        )
        assert info["description"] == "approved for u1"
        with pytest.raises(IIIInvocationError) as denied:
            client.trigger({"function_id": "ext::denied::nope", "payload": {}})
        assert denied.value.code == "function_not_found"
        wait_for(lambda: len(operator.trigger_hooks) == 1)
        [hook] = operator.trigger_hooks
        assert (hook["trigger_type"], hook["function_id"]) == ("subscribe", "mine::hello")
        triggers = client.trigger(
            {"function_id": "engine::registered-triggers::list", "payload": {}}
        )["registered_triggers"]
        [bound] = [t for t in triggers if t["worker_name"] == "untrusted"]
        assert bound["function_id"] == "ext::mine::hello"
        assert bound["config"] == {"topic": "approved-greetings"}


def test_official_worker_with_a_bad_token_is_refused(
    rbac_engine: EngineThread, operator: Operator
) -> None:
    """The official SDK ignores the AUTH_ERROR frame and reconnects (protocol.md §1.3); it
    never becomes a worker."""
    url = rbac_engine.worker_urls[1]
    with run_official(UNTRUSTED, url, env={"TEST_TOKEN": "stolen"}):
        wait_for(lambda: len(operator.auth) >= 2, timeout=20)  # refused, then retried
        assert {a["headers"]["x-test-token"] for a in operator.auth} == {"stolen"}
        workers = operator.client.trigger({"function_id": "engine::workers::list", "payload": {}})
        assert "untrusted" not in {w["name"] for w in workers["workers"]}
