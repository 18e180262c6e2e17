"""The ``iii-pubsub`` worker (builtins.md §8): publish and the subscribe trigger type."""
