"""CORS for the HTTP trigger server (builtins.md §3.11), computed once per request.

It wraps every response, matched or not: preflights (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) are answered here with 200; other responses to a request with
an allowed ``Origin`` get ``access-control-allow-origin`` (and ``expose-headers``).
"""

from __future__ import annotations

from ...config.engine import CorsConfig
from .responses import Headers

__all__ = ["Cors"]


class Cors:
    """A :class:`CorsConfig` turned into header lists. Empty lists mean "any"."""

    def __init__(self, config: CorsConfig) -> None:
        origins = config.allowed_origins
        self.any_origin = not origins or "*" in origins
        self.origins = frozenset(origins)
        methods = [m.upper() for m in config.allowed_methods]
        self.methods = ", ".join(methods).encode() if methods else b"*"
        headers = config.allowed_headers
        self.headers = ", ".join(headers).encode() if headers else b"*"
        self.max_age = None if config.max_age_s is None else str(config.max_age_s).encode()

    def _origin(self, origin: str) -> Headers | None:
        if self.any_origin:
            return [(b"access-control-allow-origin", b"*")]
        if origin in self.origins:
            return [(b"access-control-allow-origin", origin.encode()), (b"vary", b"origin")]
        return None

    def simple(self, origin: str) -> Headers | None:
        """Headers added to an actual response for ``origin``; ``None`` when not allowed."""
        headers = self._origin(origin)
        if headers is not None:
            headers.append((b"access-control-expose-headers", b"*"))
        return headers

    def preflight(self, origin: str, request_headers: str | None) -> Headers:
        """Headers of the 200 answer to a preflight (no CORS headers for a denied origin)."""
        headers = self._origin(origin)
        if headers is None:
            return [(b"vary", b"origin")]
        headers.append((b"access-control-allow-methods", self.methods))
        if self.headers == b"*" and request_headers:
            headers.append((b"access-control-allow-headers", request_headers.encode("latin-1")))
        else:
            headers.append((b"access-control-allow-headers", self.headers))
        if self.max_age is not None:
            headers.append((b"access-control-max-age", self.max_age))
        return headers
