"""RBAC decisions (protocol.md §8): ``expose_functions`` compiled, AuthInput / AuthResult, and
the §8.3 invocation predicate.

Order of evaluation for function F reached in namespace N (§8.3):

1. F in ``forbidden_functions`` → deny ("remove from rbac.forbidden_functions");
2. a grant in ``namespaces[N]`` covers F (exact id, or a wildcard bare or as ``match("…")``);
3. N is ``default`` and F in ``allowed_functions``;
4. F is an infrastructure id (:data:`INFRASTRUCTURE_FUNCTIONS`);
5. the listener has no ``rbac`` block, or an ``expose_functions`` filter matches →
   allow; else deny ("add to rbac.expose_functions").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...config.worker_manager import FunctionFilter, parse_match
from ...core.registry import DEFAULT_NAMESPACE
from ...types import Scope

__all__ = [
    "INFRASTRUCTURE_FUNCTIONS",
    "PERMISSIVE",
    "Access",
    "AuthError",
    "AuthResult",
    "Exposure",
    "auth_input",
    "glob",
    "grant_matches",
]

#: Always callable from an RBAC session unless explicitly forbidden (§8.3 step 4): without them
#: a worker cannot finish connecting, open channels, log or propagate baggage.
INFRASTRUCTURE_FUNCTIONS = frozenset(
    {
        "engine::channels::create",
        "engine::workers::register",
        "engine::log::info",
        "engine::log::warn",
        "engine::log::error",
        "engine::log::debug",
        "engine::log::trace",
        "engine::baggage::get",
        "engine::baggage::set",
        "engine::baggage::get_all",
    }
)


def glob(pattern: str) -> re.Pattern[str]:
    """``pattern`` as a regular expression for ``fullmatch``: ``*`` is any run of characters
    (``::`` included), everything else literal (§8.2)."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def grant_matches(grant: str, function_id: str) -> bool:
    """Whether one ``AuthResult.namespaces`` grant covers ``function_id``: an exact id or a
    wildcard, bare (``svc::*``) or wrapped (``match("svc::*")``)."""
    raw = parse_match(grant)
    if raw is None:
        raw = grant
    return raw == function_id or ("*" in raw and glob(raw).fullmatch(function_id) is not None)


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, and containers compare element-wise."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _value_matcher(expected: Any) -> Callable[[Any], bool]:
    pattern = parse_match(expected) if isinstance(expected, str) else None
    if pattern is not None:
        compiled = glob(pattern)
        return lambda value: isinstance(value, str) and compiled.fullmatch(value) is not None
    return lambda value: _json_equal(value, expected)


@dataclass(frozen=True)
class _Rule:
    namespace: str
    pattern: re.Pattern[str] | None
    metadata: tuple[tuple[str, Callable[[Any], bool]], ...]

    def matches(self, function_id: str, namespace: str, metadata: Any) -> bool:
        if namespace != self.namespace:
            return False
        if self.pattern is not None:
            return self.pattern.fullmatch(function_id) is not None
        if not isinstance(metadata, dict):
            return False
        return all(key in metadata and test(metadata[key]) for key, test in self.metadata)


class Exposure:
    """A listener's ``rbac.expose_functions``, compiled once (§8.2): the filters are OR-ed; a
    filter without ``namespace`` applies in ``default`` only."""

    def __init__(self, filters: Sequence[FunctionFilter]) -> None:
        self._rules = tuple(
            _Rule(
                f.namespace or DEFAULT_NAMESPACE,
                glob(f.match) if f.match is not None else None,
                tuple((k, _value_matcher(v)) for k, v in (f.metadata or {}).items()),
            )
            for f in filters
        )

    def matches(self, function_id: str, namespace: str, metadata: Any) -> bool:
        """Whether some filter exposes ``function_id`` (registered with ``metadata``) reached
        in ``namespace``."""
        return any(rule.matches(function_id, namespace, metadata) for rule in self._rules)


class AuthError(Exception):
    """The connection is refused (protocol.md §1.3): its worker gets
    ``{"type":"error","error":{"code":"AUTH_ERROR","message":<message>}}`` and a Close."""

    code = "AUTH_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AuthError(f"invalid AuthResult: `{key}` must be a list of strings")
    return value


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise AuthError(f"invalid AuthResult: `{key}` must be a boolean")
    return value


@dataclass(frozen=True)
class AuthResult:
    """What the auth function returned (protocol.md §8.1, seed 003 ``AuthResult``); defaults
    are those of an omitted field. :data:`PERMISSIVE` is the session of a listener without an
    ``auth_function_id``."""

    namespaces: Mapping[str, Sequence[str]] = field(default_factory=dict)
    allowed_functions: frozenset[str] = frozenset()
    forbidden_functions: frozenset[str] = frozenset()
    allowed_trigger_types: frozenset[str] | None = None
    allow_trigger_type_registration: bool = False
    allow_function_registration: bool = True
    function_registration_prefix: str | None = None
    context: Any = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> AuthResult:
        """Read an auth function's result. A ``null`` field counts as omitted; unknown keys are
        ignored. Raises :class:`AuthError` for ``null`` itself, a non-object, or a field of the
        wrong type."""
        if value is None:
            raise AuthError("auth function returned no result")
        if not isinstance(value, dict):
            raise AuthError(f"invalid AuthResult: expected an object, got {type(value).__name__}")
        get = value.get
        namespaces: dict[str, list[str]] = {}
        raw = get("namespaces")
        if raw is not None:
            if not isinstance(raw, dict):
                raise AuthError("invalid AuthResult: `namespaces` must be an object")
            for name, grants in raw.items():
                namespaces[name] = _strings(grants, f"namespaces.{name}")
        types = get("allowed_trigger_types")
        prefix = get("function_registration_prefix")
        if prefix is not None and not isinstance(prefix, str):
            raise AuthError("invalid AuthResult: `function_registration_prefix` must be a string")
        flags = {}
        for key, default in (
            ("allow_trigger_type_registration", False),
            ("allow_function_registration", True),
        ):
            flags[key] = default if get(key) is None else _flag(get(key), key)
        return cls(
            namespaces=namespaces,
            allowed_functions=frozenset(
                _strings(get("allowed_functions") or [], "allowed_functions")
            ),
            forbidden_functions=frozenset(
                _strings(get("forbidden_functions") or [], "forbidden_functions")
            ),
            allowed_trigger_types=None
            if types is None
            else frozenset(_strings(types, "allowed_trigger_types")),
            function_registration_prefix=prefix or None,
            context=value.get("context", {}),
            **flags,
        )


#: The session of a listener without ``auth_function_id`` (§8.1: trigger types allowed).
PERMISSIVE = AuthResult(allow_trigger_type_registration=True)


def auth_input(scope: Scope) -> dict[str, Any]:
    """AuthInput for the upgrade request in ``scope`` (§8.1): ``headers`` (lower-case names,
    the last value of a repeated header), ``query_params`` (split on ``&`` / ``=``, not
    percent-decoded; a repeated key keeps every value in order; a key without ``=`` has
    ``""``), ``ip_address`` (the peer's address)."""
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", ())
    }
    query: dict[str, list[str]] = {}
    for pair in scope.get("query_string", b"").decode("latin-1").split("&"):
        if pair:
            key, _, val = pair.partition("=")
            query.setdefault(key, []).append(val)
    client = scope.get("client")
    return {"headers": headers, "query_params": query, "ip_address": client[0] if client else ""}


class Access:
    """The §8.3 predicate of one session: the listener's ``exposure`` (``None`` without an
    ``rbac`` block) and the session's AuthResult."""

    def __init__(self, exposure: Exposure | None, auth: AuthResult) -> None:
        self.exposure = exposure
        self.auth = auth

    def denial(self, function_id: str, namespace: str, metadata: Any) -> str | None:
        """``None`` when the session may call ``function_id`` in ``namespace`` (registered with
        ``metadata``), else the ``FORBIDDEN`` message of §8.3."""
        auth = self.auth
        if function_id in auth.forbidden_functions:
            return f"function '{function_id}' not allowed (remove from rbac.forbidden_functions)"
        grants = auth.namespaces.get(namespace)
        if grants and any(grant_matches(g, function_id) for g in grants):
            return None
        if namespace == DEFAULT_NAMESPACE and function_id in auth.allowed_functions:
            return None
        if function_id in INFRASTRUCTURE_FUNCTIONS or self.exposure is None:
            return None
        if self.exposure.matches(function_id, namespace, metadata):
            return None
        return f"function '{function_id}' not allowed (add to rbac.expose_functions)"

    def allows(self, function_id: str, namespace: str, metadata: Any) -> bool:
        """Whether :meth:`denial` lets the call through."""
        return self.denial(function_id, namespace, metadata) is None
