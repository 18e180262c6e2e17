"""HTTP-invoked functions (protocol.md §4): ``registerfunction`` with an ``invocation``.

The engine, not the worker, executes such a function: every invocation becomes one outbound
HTTP request to the configured URL, and the HTTP response becomes the invocation result.

- Registration (§4.1): :meth:`HttpFunctions.prepare` validates the URL (§4.3, DNS lookup
  included) and resolves the auth secrets from the **engine's** environment, only from the
  variables the operator allowed (``EngineConfig.http_functions_secret_env``, default
  ``III_SECRET_*``: a worker must not make the engine send it ``HOME`` or a cloud key). It
  returns the in-process handler, or a :class:`~.registry.FailedFunction` describing why not.
- Invocation (§4.2): :class:`HttpFunction` re-validates the URL, then sends ``data`` as compact
  JSON with the ``x-iii-*`` headers, the configured headers and the auth header (bearer,
  API key or the HMAC ``x-iii-signature``). Redirects are not followed.
- Response mapping (§4.4): :func:`map_response`.

Beyond the real engine, which only logs a failed registration (later calls get
``function_not_found``), this engine remembers the failure: calls to that id get the failure's
own code (``url_validation_failed``, ``token_not_found``, ...) and reason, until the worker
registers the id again, unregisters it or disconnects. Nothing is sent to the worker at
registration time: the official SDK treats unknown ``registrationrejected`` codes as fatal.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx
import pydantic
import pydantic_core

from iii.http import HttpAuthApiKey, HttpAuthBearer, HttpAuthHmac, HttpInvocationConfig

from ...config.engine import EngineConfig
from ...core.errors import InvocationError
from ...core.registry import CallContext, FailedFunction
from ...core.worker import BuiltinWorker
from .transport import OneWriteTransport

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "HttpFunction",
    "HttpFunctions",
    "UrlPolicy",
    "is_private_ip",
    "map_response",
    "resolve_auth",
    "secret_allowed",
    "sign",
    "validate_url",
]

logger = logging.getLogger("iii_asgi.engine")

DEFAULT_TIMEOUT_MS = 30_000
CLIENT_TIMEOUT_S = 60.0
POOL_IDLE_PER_HOST = 50

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# -- URL validation (§4.3) ------------------------------------------------------------------------

_PRIVATE_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "127.0.0.0/8",  # loopback
        "10.0.0.0/8",  # RFC 1918
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",  # link-local
        "255.255.255.255/32",  # broadcast
        "192.0.2.0/24",  # documentation
        "198.51.100.0/24",
        "203.0.113.0/24",
        "0.0.0.0/32",  # unspecified
    )
)
_PRIVATE_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::1/128",  # loopback
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "::/128",  # unspecified
        "ff00::/8",  # multicast
    )
)


def is_private_ip(address: IPAddress) -> bool:
    """Whether the engine refuses to call ``address`` (§4.3's list, not Python's ``is_private``:
    100.64/10, IPv4 multicast and 0/8 other than 0.0.0.0 are allowed). An IPv4-mapped IPv6
    address is judged as its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is None:
            return any(address in net for net in _PRIVATE_V6)
        address = mapped
    return any(address in net for net in _PRIVATE_V4)


@dataclass(frozen=True)
class UrlPolicy:
    """The ``security`` settings of §4.1. ``allowlist`` holds host globs (``*``, ``?``,
    ``[...]``); an empty allowlist means ``["*"]``."""

    allowlist: tuple[str, ...] = ("*",)
    block_private_ips: bool = True
    require_https: bool = True

    @classmethod
    def from_config(cls, config: EngineConfig) -> UrlPolicy:
        """From ``EngineConfig.http_functions_*``; ``local_development`` allows ``http://`` and
        loopback/private addresses (the allowlist still applies)."""
        dev = config.local_development
        return cls(
            allowlist=tuple(config.http_functions_url_allowlist) or ("*",),
            block_private_ips=config.http_functions_block_private_ips and not dev,
            require_https=config.http_functions_require_https and not dev,
        )

    def host_allowed(self, host: str) -> bool:
        host = host.lower()
        return any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in self.allowlist or "*")


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _fail(message: str) -> InvocationError:
    return InvocationError("url_validation_failed", message)


async def validate_url(url: str, policy: UrlPolicy, resolve: Resolver = _resolve) -> None:
    """Check ``url`` against ``policy`` (§4.3) in order: parse, https, allowlist, private IPs.

    Raises :class:`InvocationError` ``url_validation_failed`` with message ``Invalid URL``,
    ``HTTPS is required``, ``URL not in allowlist``, ``Private IP blocked`` or
    ``DNS lookup failed``. Only ``http``/``https`` URLs with a host parse.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _fail("Invalid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _fail("Invalid URL")
    if policy.require_https and parts.scheme != "https":
        raise _fail("HTTPS is required")
    if not policy.host_allowed(host):
        raise _fail("URL not in allowlist")
    if not policy.block_private_ips:
        return
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if is_private_ip(literal):
            raise _fail("Private IP blocked")
        return
    try:
        addresses = await resolve(host, 443)
    except (OSError, UnicodeError):
        raise _fail("DNS lookup failed") from None
    if not addresses:
        raise _fail("DNS lookup failed")
    for text in addresses:
        try:
            resolved = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise _fail("DNS lookup failed") from None
        if is_private_ip(resolved):
            raise _fail("Private IP blocked")


# -- auth (§4.1 step 2, §4.2) ---------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedAuth:
    """Auth with its secret read from the engine's environment."""

    kind: str  # "bearer" | "api_key" | "hmac"
    secret: str
    header: str = ""


def secret_allowed(name: str, allowed: Sequence[str]) -> bool:
    """Whether the environment variable ``name`` matches a glob of ``allowed`` (case-sensitive,
    as variable names are)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed)


def resolve_auth(
    auth: HttpAuthBearer | HttpAuthHmac | HttpAuthApiKey | None,
    environ: Mapping[str, str],
    allowed: Sequence[str] = ("*",),
) -> ResolvedAuth | None:
    """Read the secret named by ``token_key`` / ``secret_key`` / ``value_key`` from ``environ``,
    if the name matches a glob of ``allowed``.

    Raises :class:`InvocationError` ``secret_not_allowed`` for a name outside ``allowed`` (checked
    first, so a refusal says nothing about whether the variable exists), and
    ``token_not_found`` / ``secret_not_found`` / ``api_key_not_found`` when it is not set.
    """
    if auth is None:
        return None
    if isinstance(auth, HttpAuthBearer):
        code, key = "token_not_found", auth.token_key
    elif isinstance(auth, HttpAuthHmac):
        code, key = "secret_not_found", auth.secret_key
    else:
        code, key = "api_key_not_found", auth.value_key
    if not secret_allowed(key, allowed):
        shown = ", ".join(allowed) or "none"
        raise InvocationError(
            "secret_not_allowed",
            f"environment variable {key} may not be used as a secret (allowed: {shown}; "
            "iii-http-functions security.secret_env_allowlist, --secret-env)",
        )
    value = environ.get(key)
    if value is None:
        raise InvocationError(code, f"environment variable {key} is not set in the engine")
    header = auth.header if isinstance(auth, HttpAuthApiKey) else ""
    return ResolvedAuth(auth.type, value, header)


def sign(body: bytes, timestamp: str, secret: str) -> str:
    """The ``x-iii-signature`` value (§4.2): ``"sha256=" + hex(HMAC-SHA256(secret,
    timestamp + ":" + base64(body)))``."""
    signing_input = f"{timestamp}:{base64.b64encode(body).decode('ascii')}"
    digest = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


# -- response mapping (§4.4) ----------------------------------------------------------------------


def _status_line(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "<unknown status code>"
    return f"{status} {phrase}"


def map_response(status: int, body: bytes) -> Any:
    """The invocation outcome of an HTTP response: the result, or :class:`InvocationError`.

    2xx: empty → ``None``, JSON → parsed, else ``invalid_response``. 1xx/3xx: parsed JSON or
    ``None``. ≥400: ``{"error":{"code","message"}}`` → that code (default ``http_error``) and
    message (default ``HTTP request failed``), else ``http_error`` ``HTTP <status line>``.
    """
    if 200 <= status < 300:
        if not body:
            return None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise InvocationError("invalid_response", str(exc)) from None
    if status < 400:
        try:
            return json.loads(body) if body else None
        except ValueError:
            return None
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        if isinstance(code, (str, type(None))) and isinstance(message, (str, type(None))):
            raise InvocationError(code or "http_error", message or "HTTP request failed")
    raise InvocationError("http_error", f"HTTP {_status_line(status)}")


def _cause_chain(exc: BaseException) -> str:
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 8:
        parts.append(str(current) or type(current).__name__)
        current = current.__cause__ or current.__context__
    return ": ".join(parts)


# -- the function --------------------------------------------------------------------------------


class HttpFunction:
    """The in-process handler of one HTTP-invoked function (a :data:`~.registry.BuiltinHandler`)."""

    def __init__(
        self,
        service: HttpFunctions,
        function_id: str,
        config: HttpInvocationConfig,
        auth: ResolvedAuth | None,
    ) -> None:
        self.service = service
        self.function_id = function_id
        self.config = config
        self.auth = auth

    def build_request(self, data: Any) -> tuple[list[tuple[str, str]], bytes]:
        """Headers in §4.2 order and the compact-JSON body of one request."""
        body = pydantic_core.to_json(data)
        timestamp = str(int(time.time()))
        headers = [
            ("content-type", "application/json"),
            ("x-iii-function-path", self.function_id),
            ("x-iii-invocation-id", str(uuid.uuid4())),
            ("x-iii-timestamp", timestamp),
        ]
        headers.extend((self.config.headers or {}).items())
        auth = self.auth
        if auth is not None:
            if auth.kind == "bearer":
                headers.append(("authorization", f"Bearer {auth.secret}"))
            elif auth.kind == "api_key":
                headers.append((auth.header, auth.secret))
            else:
                headers.append(("x-iii-signature", sign(body, timestamp, auth.secret)))
        return headers, body

    async def __call__(self, context: CallContext, data: Any) -> Any:
        await validate_url(self.config.url, self.service.policy, self.service.resolve)
        headers, body = self.build_request(data)
        timeout_ms = self.config.timeout_ms or DEFAULT_TIMEOUT_MS
        timeout_s = timeout_ms / 1000
        client = self.service.client()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            request = client.build_request(
                self.config.method, self.config.url, headers=headers, content=body
            )
            response = await asyncio.wait_for(client.send(request, stream=True), timeout_s)
        except asyncio.TimeoutError:
            raise InvocationError(
                "http_request_failed", f"HTTP request failed: timed out after {timeout_ms} ms"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            raise InvocationError(
                "http_request_failed", f"HTTP request failed: {_cause_chain(exc)}"
            ) from None
        try:
            content = await asyncio.wait_for(response.aread(), max(deadline - loop.time(), 0.0))
        except asyncio.TimeoutError:
            raise InvocationError(
                "http_response_failed",
                f"Failed to read response body: timed out after {timeout_ms} ms",
            ) from None
        except (httpx.HTTPError, OSError) as exc:
            raise InvocationError(
                "http_response_failed", f"Failed to read response body: {_cause_chain(exc)}"
            ) from None
        finally:
            await response.aclose()
        return map_response(response.status_code, content)


class HttpFunctions(BuiltinWorker):
    """The ``iii-http-functions`` worker: registration and the shared HTTP client of every
    HTTP-invoked function of one engine (the core's :class:`FunctionPreparer`).

    ``environ`` is where auth secrets are read (the engine process's environment by default),
    only variables matching ``EngineConfig.http_functions_secret_env``; ``resolve`` is the DNS
    lookup used by URL validation.
    """

    def __init__(
        self,
        config: EngineConfig,
        environ: Mapping[str, str] | None = None,
        resolve: Resolver = _resolve,
    ) -> None:
        self.policy = UrlPolicy.from_config(config)
        self.secret_env = tuple(config.http_functions_secret_env)
        self.environ = os.environ if environ is None else environ
        self.resolve = resolve
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        """One pooled client (50 idle connections, no redirects, no proxies from the
        environment; a small request leaves in one write, :mod:`.transport`), created on first
        use on the engine's loop."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=OneWriteTransport(max_keepalive_connections=POOL_IDLE_PER_HOST),
                follow_redirects=False,
                timeout=CLIENT_TIMEOUT_S,
                trust_env=False,
            )
        return self._client

    name = "iii-http-functions"

    async def close(self) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def prepare(
        self, function_id: str, namespace: str, invocation: Any
    ) -> HttpFunction | FailedFunction:
        """Validate a ``registerfunction.invocation`` (§4.1): the handler to register, or why
        the function cannot be registered (the failure is logged here)."""
        try:
            config = HttpInvocationConfig.model_validate(invocation)
        except pydantic.ValidationError as exc:
            failure = InvocationError("deserialization_error", f"invalid invocation: {exc}")
        else:
            try:
                await validate_url(config.url, self.policy, self.resolve)
                auth = resolve_auth(config.auth, self.environ, self.secret_env)
            except InvocationError as exc:
                failure = exc
            else:
                return HttpFunction(self, function_id, config, auth)
        message = (
            f"HTTP-invoked function {function_id} was not registered "
            f"({failure.code}): {failure.message}"
        )
        logger.warning("%s (namespace %s)", message, namespace)
        return FailedFunction(function_id, namespace, failure.code, message)
