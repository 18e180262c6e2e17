"""The official ``iii-sdk`` / ``iii-helpers`` 0.25 surface imports from our distribution.

``official_surface.json`` lists, per module of the official wheels, its public names; it is
generated from the wheels by ``scripts/official_surface.py`` (run with the official venv's
Python; see its docstring to regenerate). Every listed module must import here with every
listed name. Seed paths that 0.25 dropped or moved are pinned too (seeds win).

The behaviour probes run the same snippets under the official SDK and under ours (each in its
own interpreter) and compare the JSON they print.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.official import official_python
from tests.processes import run as run_process

SURFACE = json.loads((Path(__file__).parent / "official_surface.json").read_text())
MODULES: dict[str, list[str]] = SURFACE["modules"]

#: Names the seeds import from paths 0.25 does not have (seeds 001-004 win, sdk_surface.md §1).
SEED_PATHS: dict[str, list[str]] = {
    "iii": ["FunctionInfo", "TriggerInfo", "WorkerInfo", "IIIInvocationError", "Logger"],
    "iii.iii_types": ["WorkerInfo", "FunctionInfo", "TriggerInfo"],
    "iii.iii_constants": ["IIIConnectionState"],
    "iii_helpers.observability": ["DEFAULT_ALLOWLIST"],
    "iii_helpers.worker_connection_manager": [
        "AuthInput",
        "AuthResult",
        "OnFunctionRegistrationInput",
        "OnFunctionRegistrationResult",
        "OnTriggerRegistrationInput",
        "OnTriggerRegistrationResult",
        "OnTriggerTypeRegistrationInput",
        "OnTriggerTypeRegistrationResult",
    ],
    "iii_observability": ["Logger", "OtelConfig", "DEFAULT_ALLOWLIST"],
}


def test_the_data_file_covers_both_wheels() -> None:
    assert SURFACE["distributions"] == {"iii-sdk": "0.25.0", "iii-helpers": "0.25.0"}
    assert "iii" in MODULES and "iii_helpers.http" in MODULES
    assert sum(map(len, MODULES.values())) > 300


@pytest.mark.parametrize("module_name", sorted(MODULES))
def test_official_module_has_every_public_name(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in MODULES[module_name] if not hasattr(module, name)]
    assert missing == [], f"{module_name} lacks {missing}"


@pytest.mark.parametrize("module_name", sorted(SEED_PATHS))
def test_seed_import_paths(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in SEED_PATHS[module_name] if not hasattr(module, name)]
    assert missing == [], f"{module_name} lacks {missing}"


def test_star_imports_resolve_every_name() -> None:
    """``from m import *`` resolves every ``__all__`` name, lazy re-exports included."""
    for module_name in [*MODULES, *SEED_PATHS]:
        module = importlib.import_module(module_name)
        namespace: dict[str, Any] = {}
        exec(f"from {module_name} import *", namespace)
        assert set(getattr(module, "__all__", ())) <= set(namespace), module_name


def test_same_objects_under_both_paths() -> None:
    import iii
    import iii.iii
    import iii.trigger
    import iii.types
    import iii_helpers.http
    import iii_helpers.stream

    assert iii.IIIClient is iii.III is iii.iii.III is iii.types.IIIClient
    assert iii.iii.TriggerAction is iii.TriggerAction
    assert iii.trigger.TriggerHandler is iii.TriggerHandler
    assert iii_helpers.http.http is iii.http
    assert iii_helpers.stream.StreamSetInput is iii.stream.StreamSetInput


def test_trigger_handler_and_config_are_generic() -> None:
    from pydantic import BaseModel

    from iii.trigger import TriggerConfig, TriggerHandler

    class Cfg(BaseModel):
        path: str

    class Handler(TriggerHandler[Cfg]):
        async def register_trigger(self, config: TriggerConfig[Cfg]) -> None: ...

        async def unregister_trigger(self, config: TriggerConfig[Cfg]) -> None: ...

    config = TriggerConfig[Cfg](id="t1", function_id="f", config={"path": "/x"})
    assert isinstance(config, TriggerConfig) and config.config == {"path": "/x"}
    assert isinstance(Handler(), TriggerHandler)


# -- behaviour: the same snippets under both SDKs ------------------------------------------------

PROBE = textwrap.dedent(
    """
    import json, os
    from pydantic import BaseModel
    from iii import InvocationError, MiddlewareFunctionInput, ObserveRejection
    from iii.engine import EngineFunctions, EngineTriggers
    from iii.helpers import ChannelDirection, ChannelItem, extract_channel_refs
    from iii.iii_types import InvokeFunctionMessage, RegisterFunctionMessage
    from iii.iii_types import RegisterTriggerMessage, WorkerRegisteredMessage
    from iii.channels import resolve_headers
    from iii.protocol import FEATURE_OBSERVE_V1, MessageType
    from iii.trigger import TriggerConfig
    from iii.utils import is_channel_ref, python_type_to_format, safe_stringify
    from iii_helpers.worker_connection_manager import (
        AuthResult, OnFunctionRegistrationInput, OnTriggerRegistrationInput,
        OnTriggerRegistrationResult)

    class Order(BaseModel):
        id: int
        note: str | None = None

    def wire(model):
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)

    ref = {"channel_id": "c1", "access_key": "k", "direction": "read"}
    os.environ["III_TOKEN"] = "tok"
    out = {
        "auth": AuthResult().model_dump(),
        "fn_hook": OnFunctionRegistrationInput(function_id="f", context={}).model_dump(),
        "trigger_hook": OnTriggerRegistrationInput(
            trigger_id="t", trigger_type="cron", function_id="f", context={}).model_dump(),
        "trigger_hook_result": OnTriggerRegistrationResult().model_dump(exclude_none=True),
        "middleware": MiddlewareFunctionInput.model_validate({
            "function_id": "f", "payload": {"a": 1}, "action": {"type": "enqueue",
            "queue": "q"}, "context": {"u": 1}}).model_dump(mode="json"),
        "engine": [EngineFunctions.LIST_WORKERS, EngineFunctions.REGISTER_WORKER,
                   EngineTriggers.FUNCTIONS_AVAILABLE, EngineTriggers.LOG],
        "register_fn": wire(RegisterFunctionMessage(id="a::b", description="d")),
        "invoke": wire(InvokeFunctionMessage(function_id="f", data={"x": 1},
                                             invocation_id="i")),
        "register_trigger": wire(RegisterTriggerMessage(
            id="t", trigger_type="http", function_id="f", config={"api_path": "/x"})),
        "registered": wire(WorkerRegisteredMessage.model_validate(
            {"type": "workerregistered", "worker_id": "w", "reattach_token": None})),
        "message_types": [MessageType.OBSERVE.value, MessageType.FUNCTION_REGISTERED.value],
        "feature": FEATURE_OBSERVE_V1,
        "direction": ChannelDirection.READ.value,
        "item": [ChannelItem.text_item("t").is_text, ChannelItem.binary_item(b"b").is_binary],
        "refs": [(p, r.model_dump()) for p, r in
                 extract_channel_refs({"a": [1, {"w": ref}], "b": ref})],
        "is_ref": [is_channel_ref(ref), is_channel_ref({"channel_id": "c"})],
        "stringify": [safe_stringify({"a": 1}), safe_stringify({"s": {1}})],
        "format_int": python_type_to_format(int),
        "format_list": python_type_to_format(list[str]),
        "format_model": python_type_to_format(Order),
        "format_optional": [python_type_to_format(int | None), python_type_to_format(None)],
        "format_dict": python_type_to_format(dict[str, int]),
        "headers": [resolve_headers(None), resolve_headers({"authorization": "x"})],
        "trigger_config": TriggerConfig[dict](id="i", function_id="f",
                                              config={"k": 1}).model_dump(),
        "errors": [str(InvocationError("TIMEOUT", "late")), str(ObserveRejection("C", "m"))],
    }
    print(json.dumps(out, sort_keys=True))
    """
)


def _run(python: str, script: str) -> Any:
    env = {**os.environ, "OTEL_ENABLED": "false"}
    env.pop("PYTHONPATH", None)
    done = run_process([python, "-c", script], text=True, env=env, cwd="/", timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.interop
def test_behaviour_matches_the_official_sdk() -> None:
    ours = _run(sys.executable, PROBE)
    official = _run(str(official_python()), PROBE)
    different = {key: (ours[key], official[key]) for key in official if ours[key] != official[key]}
    assert different == {}
