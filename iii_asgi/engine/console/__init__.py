"""The dev console: a web page served by the engine that shows and drives everything in it.

Its own room in the engine (it may import workers; the core never imports it): an ASGI app
(Starlette, Jinja2 templates, htmx with its SSE and morph extensions, shipped as static files)
served on ``EngineConfig.console_port``. See docs/console.md.
"""

from __future__ import annotations

from .worker import Console

__all__ = ["Console"]
