"""iii-asgi: the ASGI side of the iii Python SDK.

``iii_asgi.engine`` is an embedded, wire-compatible iii engine served by uvicorn
(see ``iii_asgi.engine.Engine``). The ASGI bridge lands here later.
"""

__all__: list[str] = []
