"""The engine's built-in workers, one package each, named as in ``config.yaml`` (builtins.md
§13) without the ``iii-`` prefix: ``http``, ``state``, ``stream``, ``queue``, ``pubsub``,
``cron``, ``http_functions``, ``observability``, ``worker_manager``. Each is a
:class:`~iii_asgi.engine.core.worker.BuiltinWorker`; :mod:`iii_asgi.engine.server` composes
them."""
