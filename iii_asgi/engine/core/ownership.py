"""Who may register, replace or remove what (docs/security.md, "Ownership").

Everything a connection registers belongs to it: functions (protocol.md §2.4 step 5), trigger
types (§2.7), triggers and therefore HTTP routes (§2.9). Another connection may not replace,
rebind or remove them while the owner is live; a connection that is tearing down (§1.8) no longer
holds anything, so a reconnecting worker takes its registrations back. The engine owns what it
provides itself, and the ``engine::`` prefix in every namespace.

The checks are pure functions of the registry, so they run synchronously right before the
registry is changed (no ``await`` between check and change):

- :func:`function_refusal` — ``registerfunction``: ``engine::`` ids and ids of engine built-ins
  are refused in every namespace (owner ``""``); an id a live connection owns is refused naming
  it (``FUNCTION_NAMESPACE_CONFLICT``, §2.6).
- :func:`trigger_type_refusal` — ``registertriggertype``: ``engine::`` ids and the ids of
  engine-provided types (``http``, ``cron``, ``state``, ``stream``... every in-process
  provider) are refused in every namespace; a type a live connection provides is refused.
- :func:`trigger_replace_refusal` — ``registertrigger`` with an existing id: only its owner
  replaces it; a durable binding (``engine::register_trigger``, no owner) is replaced by nobody.
- :func:`trigger_removal_refusal` — ``unregistertrigger`` (only the owner) and
  ``engine::unregister_trigger`` (the owner, or anyone for a durable binding).

Each returns ``None`` when allowed, else the reason (a sentence naming the owner).
"""

from __future__ import annotations

from .connection import WorkerConnection
from .registry import Registry, Trigger

__all__ = [
    "ENGINE_PREFIX",
    "FORBIDDEN",
    "Refusal",
    "function_refusal",
    "trigger_removal_refusal",
    "trigger_replace_refusal",
    "trigger_type_refusal",
]

#: Function and trigger-type ids under this prefix belong to the engine, in every namespace.
ENGINE_PREFIX = "engine::"
#: The error code of a refused trigger or trigger-type registration or removal.
FORBIDDEN = "FORBIDDEN"


class Refusal(str):
    """Why a registration is refused; ``owner_id`` is the owning worker's id, ``""`` for the
    engine (the ``owner_worker_id`` of ``registrationrejected``, §2.6)."""

    owner_id: str

    def __new__(cls, reason: str, owner_id: str = "") -> Refusal:
        self = super().__new__(cls, reason)
        self.owner_id = owner_id
        return self


def _holder(owner: WorkerConnection | None) -> str:
    return "the engine" if owner is None else f"worker {owner.worker_id}"


def _reserved(what: str, ident: str, provided: bool) -> Refusal | None:
    if ident.startswith(ENGINE_PREFIX):
        return Refusal(f"{what} ids under {ENGINE_PREFIX} are reserved to the engine")
    if provided:
        return Refusal(f"{what} {ident!r} is provided by the engine")
    return None


def function_refusal(
    registry: Registry, conn: WorkerConnection, namespace: str, function_id: str
) -> Refusal | None:
    """Whether ``conn`` may register ``function_id`` in ``namespace`` (§2.4 steps 4–5)."""
    reserved = _reserved("function", function_id, registry.engine_function(function_id))
    if reserved is not None:
        return reserved
    owner = registry.live_owner(namespace, function_id)
    if owner is True:
        return Refusal(f"{function_id} is provided by the engine in namespace {namespace}")
    if isinstance(owner, WorkerConnection) and owner is not conn:
        return Refusal(f"{function_id} is owned by worker {owner.worker_id}", owner.worker_id)
    return None


def trigger_type_refusal(
    registry: Registry, conn: WorkerConnection, namespace: str, type_id: str
) -> Refusal | None:
    """Whether ``conn`` may provide trigger type ``type_id`` in ``namespace`` (§2.7)."""
    reserved = _reserved("trigger type", type_id, registry.engine_trigger_type(type_id))
    if reserved is not None:
        return reserved
    current = registry.trigger_types.get((namespace, type_id))
    provider = current.provider if current is not None else None
    if not isinstance(provider, WorkerConnection) or provider is conn or not provider.alive:
        return None
    return Refusal(
        f"trigger type {type_id!r} in namespace {namespace!r} is provided by worker "
        f"{provider.worker_id}",
        provider.worker_id,
    )


def trigger_replace_refusal(existing: Trigger, owner: WorkerConnection | None) -> Refusal | None:
    """Whether a registration by ``owner`` (``None``: the engine) may replace ``existing``, the
    binding already stored under the same id (§2.9)."""
    if owner is None or existing.owner is owner:
        return None
    if existing.owner is not None and not existing.owner.alive:
        return None  # its connection is tearing down: nothing it holds survives (§1.8)
    return Refusal(
        f"trigger {existing.id} belongs to {_holder(existing.owner)}; "
        "another worker cannot replace it",
        existing.owner.worker_id if existing.owner is not None else "",
    )


def trigger_removal_refusal(
    trigger: Trigger, requester: WorkerConnection | None, *, durable_ok: bool
) -> Refusal | None:
    """Whether ``requester`` (``None``: an engine-initiated call) may remove ``trigger``:
    its owner may; with ``durable_ok`` (``engine::unregister_trigger``, §7.1) anyone may remove
    a durable binding made by ``engine::register_trigger``."""
    if trigger.owner is not None and trigger.owner is requester:
        return None
    if trigger.owner is None and durable_ok:
        return None
    return Refusal(
        f"trigger {trigger.id} belongs to {_holder(trigger.owner)}; only its owner may remove it",
        trigger.owner.worker_id if trigger.owner is not None else "",
    )
