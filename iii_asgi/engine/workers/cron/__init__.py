"""The ``iii-cron`` worker (builtins.md §9): the cron trigger type."""
