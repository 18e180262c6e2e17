"""The ``iii-exec`` worker: runs the config file's commands beside the engine and restarts them
when watched files change."""
