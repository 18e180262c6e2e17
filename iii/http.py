"""HTTP types: configuration of HTTP-invoked functions (protocol.md §4, seed 003).

``register_function(id, HttpInvocationConfig(url=...))`` makes the engine call ``url`` for every
invocation instead of this worker. Auth secrets never leave the engine: the ``*_key`` fields name
environment variables of the engine process.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

__all__ = [
    "HttpAuthApiKey",
    "HttpAuthBearer",
    "HttpAuthConfig",
    "HttpAuthHmac",
    "HttpInvocationConfig",
    "HttpMethod",
]

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class HttpAuthBearer(BaseModel):
    """``Authorization: Bearer <value of env var token_key>``."""

    type: Literal["bearer"] = "bearer"
    token_key: str


class HttpAuthHmac(BaseModel):
    """``x-iii-signature: sha256=<hex>`` signed with the env var ``secret_key`` (§4.2)."""

    type: Literal["hmac"] = "hmac"
    secret_key: str


class HttpAuthApiKey(BaseModel):
    """``<header>: <value of env var value_key>``."""

    type: Literal["api_key"] = "api_key"
    header: str
    value_key: str


HttpAuthConfig = HttpAuthBearer | HttpAuthHmac | HttpAuthApiKey


class HttpInvocationConfig(BaseModel):
    """An HTTP-invoked function: the engine sends each invocation to ``url`` (protocol.md §4).

    ``method`` defaults to POST; ``timeout_ms`` to the engine's 30 000 ms; ``headers`` are added
    to every request.
    """

    url: str
    method: HttpMethod = "POST"
    timeout_ms: int | None = None
    headers: dict[str, str] | None = None
    auth: HttpAuthConfig | None = None

    def to_wire(self) -> dict[str, Any]:
        """The ``registerfunction.invocation`` object (§2.0), ``None`` fields left out."""
        return self.model_dump(exclude_none=True)
