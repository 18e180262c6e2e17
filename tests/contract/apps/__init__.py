"""Small FastAPI apps in the styles of FastAPI's tutorial, each with ``make_app()`` and
``check(client)``: the same assertions pass with ``fastapi.testclient.TestClient`` and with
``iii_asgi.testing.TestClient`` (through the engine). See ``tests/contract/test_apps.py``."""
