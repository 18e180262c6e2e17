"""The ``iii-observability`` worker (builtins.md §12): the telemetry store, its functions and the
/otel socket."""
