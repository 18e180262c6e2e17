"""``iii_helpers.worker_connection_manager`` (seed 003): the types of an RBAC listener's hooks
(protocol.md §8; sdk_surface.md §1j).

- the auth function (``rbac.auth_function_id``) takes :class:`AuthInput` and returns
  :class:`AuthResult` (an error, ``None`` or an invalid result refuses the connection, §8.1);
- the registration hooks (``on_*_registration_function_id``, §8.5) take an ``On*Input`` and
  return an ``On*Result``: omitted (``None``) fields keep the requested value; raising denies
  the registration.

Example::

    from iii_helpers.worker_connection_manager import AuthInput, AuthResult

    async def auth(data: dict) -> dict:
        request = AuthInput.model_validate(data)
        token = request.headers.get("authorization", "")
        grants = AuthResult(namespaces={"orders": ["orders::*"]}, context={"token": token})
        return grants.model_dump()

Return ``model_dump(exclude_none=True)`` from a registration hook: in an
``OnTriggerRegistrationResult`` a present ``config: null`` overwrites the trigger's config.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "AuthInput",
    "AuthResult",
    "OnFunctionRegistrationInput",
    "OnFunctionRegistrationResult",
    "OnTriggerRegistrationInput",
    "OnTriggerRegistrationResult",
    "OnTriggerTypeRegistrationInput",
    "OnTriggerTypeRegistrationResult",
]


class AuthInput(BaseModel):
    """What the auth function receives for each socket upgrade (§8.1): the request's
    ``headers`` (lower-case names, one value each), its ``query_params`` (every value of a
    repeated key, in order; not percent-decoded) and the client's ``ip_address``."""

    headers: dict[str, str]
    query_params: dict[str, list[str]]
    ip_address: str


class AuthResult(BaseModel):
    """What the auth function returns: the session's grants (§8.1, §8.3).

    - ``namespaces``: ``{namespace: [function id or wildcard, ...]}`` grants valid in that
      namespace only (``"svc::*"`` or ``'match("svc::*")'``); its keys also bound the namespaces
      the worker may declare. Empty: no namespace grants, any namespace may be declared.
    - ``allowed_functions``: exact ids allowed in ``default``; ``forbidden_functions``: denied
      everywhere, over any grant.
    - ``allowed_trigger_types``: the trigger types the session may bind (``None``: all).
    - ``allow_trigger_type_registration`` (default ``False``),
      ``allow_function_registration`` (default ``True``).
    - ``function_registration_prefix``: prefixed to every function id it registers (§8.6).
    - ``context``: passed to the middleware and the registration hooks.
    """

    namespaces: dict[str, list[str]] = Field(default_factory=dict)
    allowed_functions: list[str] = Field(default_factory=list)
    forbidden_functions: list[str] = Field(default_factory=list)
    allowed_trigger_types: list[str] | None = None
    allow_trigger_type_registration: bool = False
    allow_function_registration: bool = True
    function_registration_prefix: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)


class OnTriggerTypeRegistrationInput(BaseModel):
    """``on_trigger_type_registration_function_id`` input (§8.5)."""

    trigger_type_id: str
    description: str
    context: dict[str, Any]


class OnTriggerTypeRegistrationResult(BaseModel):
    """The (possibly renamed) trigger type; ``None`` keeps the requested value."""

    trigger_type_id: str | None = None
    description: str | None = None


class OnTriggerRegistrationInput(BaseModel):
    """``on_trigger_registration_function_id`` input (§8.5): ``function_id`` as sent (before
    any prefix); ``namespace`` is the target's (``"default"`` when the request had none)."""

    trigger_id: str
    trigger_type: str
    function_id: str
    config: Any = None
    metadata: dict[str, Any] | None = None
    namespace: str = "default"
    context: dict[str, Any]


class OnTriggerRegistrationResult(BaseModel):
    """The (possibly changed) trigger; ``None`` keeps the requested value."""

    trigger_id: str | None = None
    trigger_type: str | None = None
    function_id: str | None = None
    config: Any = None


class OnFunctionRegistrationInput(BaseModel):
    """``on_function_registration_function_id`` input (§8.5): ``function_id`` as sent (before
    any prefix), in ``namespace`` (``"default"`` when the worker declared none)."""

    function_id: str
    description: str | None = None
    metadata: dict[str, Any] | None = None
    namespace: str = "default"
    context: dict[str, Any]


class OnFunctionRegistrationResult(BaseModel):
    """The (possibly changed) function; ``None`` keeps the requested value."""

    function_id: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
