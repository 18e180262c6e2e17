"""Constants and option types under their official 0.25 module path, ``iii.iii_constants``
(sdk_surface.md §1a, §2; ``IIIConnectionState`` is here per seeds 001/002).

:class:`EngineFunctions` / :class:`EngineTriggers` name the engine's built-in function ids and
trigger types (protocol.md §7.1, §5.5), e.g. ``client.trigger({"function_id":
EngineFunctions.LIST_WORKERS, "payload": {}})``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._lazy import lazy_exports
from .observability import OtelConfig
from .options import (
    DEFAULT_INVOCATION_TIMEOUT_MS,
    MAX_QUEUE_SIZE,
    ConnectionStateCallback,
    IIIConnectionState,
    InitOptions,
    ReconnectionConfig,
    TelemetryOptions,
)
from .protocol import DEFAULT_ENGINE_URL

if TYPE_CHECKING:
    from .client import FunctionRef
else:
    __getattr__, __dir__ = lazy_exports(__name__, {"FunctionRef": ("iii", "FunctionRef")})

__all__ = [
    "DEFAULT_ENGINE_URL",
    "DEFAULT_INVOCATION_TIMEOUT_MS",
    "DEFAULT_RECONNECTION_CONFIG",
    "MAX_QUEUE_SIZE",
    "ConnectionStateCallback",
    "EngineFunctions",
    "EngineTriggers",
    "FunctionRef",
    "IIIConnectionState",
    "InitOptions",
    "OtelConfig",
    "ReconnectionConfig",
    "TelemetryOptions",
]

#: The reconnect backoff when ``InitOptions.reconnection_config`` is unset: 1 s doubling to
#: 30 s, jitter 0.3, retries forever (protocol.md §1.9).
DEFAULT_RECONNECTION_CONFIG: Final = ReconnectionConfig()

#: A connection-state listener: called with each new state (and the current one on subscribe).


class EngineFunctions:
    """Ids of the engine's introspection functions (protocol.md §7.1); call them with
    ``trigger`` (the answers are raw dicts)."""

    LIST_FUNCTIONS: Final = "engine::functions::list"
    INFO_FUNCTIONS: Final = "engine::functions::info"
    LIST_WORKERS: Final = "engine::workers::list"
    INFO_WORKERS: Final = "engine::workers::info"
    LIST_TRIGGERS: Final = "engine::triggers::list"
    INFO_TRIGGERS: Final = "engine::triggers::info"
    LIST_REGISTERED_TRIGGERS: Final = "engine::registered-triggers::list"
    INFO_REGISTERED_TRIGGERS: Final = "engine::registered-triggers::info"
    REGISTER_WORKER: Final = "engine::workers::register"


class EngineTriggers:
    """Trigger types the engine provides for discovery and logs (protocol.md §5.5):
    ``FUNCTIONS_AVAILABLE`` fires with ``{"functions": [...]}`` when the function set changes."""

    FUNCTIONS_AVAILABLE: Final = "engine::functions-available"
    LOG: Final = "log"
