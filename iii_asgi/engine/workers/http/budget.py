"""The HTTP port's body budget (issue 13): request body bytes buffered across all requests.

A JSON body is read whole before its function is called, and a non-JSON body queues in the
request channel until the function reads it; without a bound, 32 concurrent 16 MiB JSON POSTs
took 1.8 GB. Every request charges the bytes it holds to one :class:`BodyBudget`
(``EngineConfig.http_body_budget_bytes``) and gives them back when it ends:

* a body with a ``content-length`` reserves all of it before a byte is read
  (:meth:`BodyBudget.reserve`), waiting first come first served while others hold the budget;
  a request waiting holds nothing, so requests cannot wait on each other for ever;
* bytes of unknown length (chunked bodies, a streamed body queued in its channel) are charged
  as they arrive (:meth:`BodyBudget.charge`) and refused when they do not fit.
"""

from __future__ import annotations

from ...core.budget import ByteBudget

__all__ = ["BodyBudget"]

#: One per HTTP port: the core's :class:`~iii_asgi.engine.core.budget.ByteBudget`
#: (``charge`` / ``reserve`` / ``release``; ``peak`` and ``refused`` for tests and benchmarks).
BodyBudget = ByteBudget
