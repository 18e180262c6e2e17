"""``iii_helpers.queue`` (seed 003 ``queue``): :class:`EnqueueResult`, what an invocation with
``TriggerAction.Enqueue(queue=...)`` returns (:mod:`iii.queue`)."""

from iii.queue import EnqueueResult

__all__ = ["EnqueueResult"]
