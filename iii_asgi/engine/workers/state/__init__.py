"""The ``iii-state`` worker (builtins.md §4): state::* functions and the state trigger type."""
