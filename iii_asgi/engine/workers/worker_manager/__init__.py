"""The ``iii-worker-manager`` worker (protocol.md §1): the worker listener(s)."""
