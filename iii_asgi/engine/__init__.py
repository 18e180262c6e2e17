"""The embedded, wire-compatible iii engine (``shared/spec/protocol.md``).

Example::

    from iii_asgi.engine import Engine, EngineConfig

    engine = Engine(EngineConfig(host="127.0.0.1", port=0))
    await engine.start()
    print(engine.url)        # ws://127.0.0.1:<port>
    await engine.stop()

``EngineThread`` runs the same engine on a background thread for synchronous code; ``EngineApp``
is the bare ASGI application of the worker listener; ``TriggerProvider`` is the seam for
in-process trigger types. Layout: ``core/`` (imports no worker), ``workers/<name>/`` (one
package per built-in worker), ``config/``, ``storage/``, ``adapters/`` (local or Redis, per
built-in: ``AdapterConfig``), and ``server.py`` which composes them.
"""

from .config.adapters import AdapterConfig
from .config.engine import EngineConfig
from .config.queue import QueueConfig
from .core.engine import EngineCore
from .core.registry import Trigger, TriggerProvider
from .server import Engine, EngineThread
from .workers.worker_manager.app import EngineApp

__all__ = [
    "AdapterConfig",
    "Engine",
    "EngineApp",
    "EngineConfig",
    "EngineCore",
    "EngineThread",
    "QueueConfig",
    "Trigger",
    "TriggerProvider",
]
