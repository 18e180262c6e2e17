"""The ``iii-http-functions`` worker (protocol.md §4): HTTP-invoked functions."""
