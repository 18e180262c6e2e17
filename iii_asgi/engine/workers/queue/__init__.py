"""The ``iii-queue`` worker (builtins.md §7): named queues, durable pub/sub, retries and dead
letters."""
