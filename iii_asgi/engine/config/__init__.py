"""Engine configuration: :class:`~.engine.EngineConfig` (every option, uvicorn's ``Config``
idiom), queue settings (:mod:`.queue`) and the YAML config-file reader (:mod:`.file`, the real
engine's ``config.yaml`` shape, builtins.md §13). The reader imports the options, never the
reverse."""

from .adapters import AdapterConfig
from .engine import CorsConfig, EngineConfig, HttpMiddleware
from .queue import QueueConfig
from .worker_manager import FunctionFilter, RbacConfig, WorkerListenerConfig

__all__ = [
    "AdapterConfig",
    "CorsConfig",
    "EngineConfig",
    "FunctionFilter",
    "HttpMiddleware",
    "QueueConfig",
    "RbacConfig",
    "WorkerListenerConfig",
]
