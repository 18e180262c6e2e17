"""The ``iii-stream`` worker (builtins.md §6): stream::* functions, stream triggers and the
client-facing stream socket."""
