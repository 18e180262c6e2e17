"""Queue types (seed 003 ``queue``): what ``trigger(..., action=TriggerAction.Enqueue(...))``
returns.

Example::

    from iii import TriggerAction
    from iii.queue import EnqueueResult

    result = client.trigger(
        {"function_id": "emails::send", "payload": {"to": "a@b.c"},
         "action": TriggerAction.Enqueue(queue="default")}
    )
    assert isinstance(result, EnqueueResult)
    print(result.messageReceiptId)     # UUID of the queued job

The engine stores the job before answering and runs it asynchronously with the queue's
retries, backoff and dead-letter queue (builtins.md §7). An unknown queue raises
``IIIInvocationError`` with code ``enqueue_error``.
"""

from __future__ import annotations

from .types import EnqueueResult

__all__ = ["EnqueueResult"]
