"""A plain Starlette app joined to iii through the ASGI middleware.

Run it on the embedded engine::

    iii-asgi run examples.starlette_app:app

    curl -s http://127.0.0.1:3111/                       # plain text
    curl -s http://127.0.0.1:3111/notes/7                # JSON, typed path parameter
    curl -s http://127.0.0.1:3111/echo --data-binary @README.md -H 'content-type: text/markdown'
    curl -s http://127.0.0.1:3111/api/version            # a mounted sub-application

Every ``Route`` (also inside ``Mount``) becomes an iii function behind an ``http`` trigger.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from iii_asgi import IIIMiddleware


async def home(request: Request) -> Response:
    return PlainTextResponse("hello from starlette\n")


async def get_note(request: Request) -> Response:
    note_id: int = request.path_params["note_id"]
    if note_id > 100:
        return JSONResponse({"error": f"note {note_id} not found"}, status_code=404)
    return JSONResponse({"id": note_id, "text": f"note {note_id}"})


async def echo(request: Request) -> Response:
    """Echo the raw body with its content type (any bytes, not only JSON)."""
    body = await request.body()
    media_type = request.headers.get("content-type", "application/octet-stream")
    return Response(body, media_type=media_type, headers={"x-body-length": str(len(body))})


async def version(request: Request) -> Response:
    return JSONResponse({"version": "1.0.0", "root_path": request.scope.get("root_path", "")})


api = Starlette(routes=[Route("/version", version)])

app = Starlette(
    routes=[
        Route("/", home),
        Route("/notes/{note_id:int}", get_note),
        Route("/echo", echo, methods=["POST"]),
        Mount("/api", app=api),
    ],
    middleware=[Middleware(IIIMiddleware)],  # the one line: routes become iii functions
)
