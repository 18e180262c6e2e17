"""The in-process provider of trigger type ``http`` (builtins.md §3.2, §3.12; protocol.md §5.4).

A binding's ``config``: ``api_path`` (required), ``http_method`` (default GET, any case),
``condition_function_id``, ``middleware_function_ids``. A refused binding (missing
``api_path``, unknown method, route conflict) raises; the engine turns the message into the
``trigger_registration_failed`` ack to the registering worker. Removal is owner-checked, so a
worker leaving never takes down a route another worker holds.
"""

from __future__ import annotations

import logging

from ...core.registry import Trigger
from .routing import METHODS, Route, Router, parse_route

__all__ = ["HttpTriggerProvider"]

logger = logging.getLogger("iii_asgi.engine.http")


class HttpTriggerProvider:
    """Mounts ``http`` bindings on a :class:`Router` (a :class:`TriggerProvider`)."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def register_trigger(self, trigger: Trigger) -> None:
        config = trigger.config if isinstance(trigger.config, dict) else {}
        api_path = config.get("api_path")
        if not isinstance(api_path, str) or not api_path:
            raise ValueError("api_path is required for http triggers")
        method = config.get("http_method") or "GET"
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise ValueError(f"http_method {method!r} is not one of {', '.join(sorted(METHODS))}")
        condition = config.get("condition_function_id")
        middleware = config.get("middleware_function_ids")
        segments, params = parse_route(api_path)
        route = Route(
            method=method.upper(),
            template=api_path,
            segments=segments,
            params=params,
            trigger_id=trigger.id,
            function_id=trigger.function_id,
            namespace=trigger.namespace,
            metadata=trigger.metadata,
            condition_function_id=condition if isinstance(condition, str) else None,
            middleware_function_ids=[m for m in middleware if isinstance(m, str)]
            if isinstance(middleware, list)
            else [],
            owner=trigger.owner,
        )
        self.router.add(route)  # raises RouteConflict (a ValueError)
        logger.info("[REGISTERED] Endpoint %s → %s", route.display, trigger.function_id)

    async def unregister_trigger(self, trigger: Trigger) -> None:
        self.router.remove(trigger.id, trigger.owner)
