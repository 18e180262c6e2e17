"""``iii_helpers``: the import paths of the official ``iii-helpers`` 0.25 package, served by this
distribution (seed 003; sdk_surface.md §1h–§1j).

- :mod:`iii_helpers.http`: ``http(callback)`` and the HTTP request/response/auth types
  (:mod:`iii.http`);
- :mod:`iii_helpers.observability`: ``Logger``, ``OtelConfig``, span helpers
  (:mod:`iii.observability`);
- :mod:`iii_helpers.queue`: ``EnqueueResult``; :mod:`iii_helpers.stream`: the stream built-in's
  types (:mod:`iii.stream`);
- :mod:`iii_helpers.worker_connection_manager`: the RBAC auth and registration-hook types.

The objects are the same as under ``iii``: ``iii_helpers.http.HttpResponse is
iii.http.HttpResponse``.
"""
