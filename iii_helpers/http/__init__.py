"""``iii_helpers.http`` (seed 003 ``http``): the :func:`http` wrapper for streaming HTTP handlers,
the buffered :class:`HttpRequest` / :class:`HttpResponse`, and the config of HTTP-invoked
functions. Implemented in :mod:`iii.http`.

>>> from iii_helpers.http import http, HttpResponse
"""

from iii.http import (
    HttpAuthApiKey,
    HttpAuthBearer,
    HttpAuthConfig,
    HttpAuthHmac,
    HttpInvocationConfig,
    HttpMethod,
    HttpRequest,
    HttpResponse,
    http,
)

__all__ = [
    "HttpAuthApiKey",
    "HttpAuthBearer",
    "HttpAuthConfig",
    "HttpAuthHmac",
    "HttpInvocationConfig",
    "HttpMethod",
    "HttpRequest",
    "HttpResponse",
    "http",
]
