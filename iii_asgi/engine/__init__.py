"""The embedded, wire-compatible iii engine (``shared/spec/protocol.md``).

Example::

    from iii_asgi.engine import Engine, EngineConfig

    engine = Engine(EngineConfig(host="127.0.0.1", port=0))
    await engine.start()
    print(engine.url)        # ws://127.0.0.1:<port>
    await engine.stop()

``EngineThread`` runs the same engine on a background thread for synchronous code; ``EngineApp``
is the bare ASGI application; ``TriggerProvider`` is the seam for in-process trigger types.
"""

from .app import EngineApp
from .config import EngineConfig
from .core import EngineCore
from .queue_config import QueueConfig
from .registry import Trigger, TriggerProvider
from .server import Engine, EngineThread

__all__ = [
    "Engine",
    "EngineApp",
    "EngineConfig",
    "EngineCore",
    "EngineThread",
    "QueueConfig",
    "Trigger",
    "TriggerProvider",
]
