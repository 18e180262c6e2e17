"""A todo API: an ordinary FastAPI app that joins iii with one line.

Run it on the embedded engine (no engine binary needed)::

    iii-asgi run examples.todo_app:app

and call it through the engine's HTTP trigger port::

    curl -s http://127.0.0.1:3111/todos -H 'content-type: application/json' \\
         -d '{"title": "write the docs"}'
    curl -s http://127.0.0.1:3111/todos
    curl -s http://127.0.0.1:3111/todos/summary          # calls the iii function todos::summarize
    curl -sN http://127.0.0.1:3111/todos/1/events        # server-sent events, streamed
    curl -s -OJ http://127.0.0.1:3111/todos/export.csv   # a file download

The same routes answer directly on uvicorn's port (http://127.0.0.1:8000), identically.

What it shows: CRUD with pydantic models, lifespan state reached through a dependency
(``Depends(get_store)``), an ``HTTPException`` (404), FastAPI's validation errors (422), a
streaming response (SSE), a ``FileResponse`` download, and a route that calls another iii
function (``todos::summarize``, declared with ``@bridge.function``) on the same event loop.
"""

from __future__ import annotations

import asyncio
import csv
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from iii_asgi import IIIBridge, IIIClient, Invocation


class TodoIn(BaseModel):
    """A new todo."""

    title: str = Field(min_length=1, max_length=200)
    done: bool = False
    tags: list[str] = Field(default_factory=list, max_length=10)


class Todo(TodoIn):
    """A stored todo."""

    id: int


class TodoPatch(BaseModel):
    """A partial update."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    done: bool | None = None


class Summary(BaseModel):
    total: int
    done: int
    open: int
    headline: str


class TodoStore:
    """An in-memory store, created in the lifespan (so it lives on the server's loop)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.todos: dict[int, Todo] = {}
        self.next_id = 1

    def add(self, todo: TodoIn) -> Todo:
        stored = Todo(id=self.next_id, **todo.model_dump())
        self.todos[stored.id] = stored
        self.next_id += 1
        return stored

    def get(self, todo_id: int) -> Todo:
        todo = self.todos.get(todo_id)
        if todo is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"todo {todo_id} not found")
        return todo

    def export_csv(self) -> Path:
        path = self.directory / "todos.csv"
        with path.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["id", "title", "done", "tags"])
            for todo in self.todos.values():
                writer.writerow([todo.id, todo.title, todo.done, " ".join(todo.tags)])
        return path


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="todos-") as directory:
        yield {"store": TodoStore(Path(directory))}


app = FastAPI(title="todos", version="1.0.0", lifespan=lifespan)
bridge = IIIBridge(app)  # the one line: every route below is now also an iii function


async def get_store(request: Request) -> TodoStore:
    """The lifespan's store (``request.state``), the same through uvicorn or the engine.
    (``async def``: FastAPI runs a plain ``def`` dependency in a thread pool per request.)"""
    store: TodoStore = request.state.store
    return store


Store = Annotated[TodoStore, Depends(get_store)]


@bridge.function("todos::summarize", description="Counts todos and writes a headline")
async def summarize(data: dict[str, Any]) -> dict[str, Any]:
    """A plain iii function (no HTTP route of its own); any worker can call it."""
    todos = data.get("todos", [])
    done = sum(1 for t in todos if t.get("done"))
    total = len(todos)
    headline = "nothing to do" if total == done else f"{total - done} of {total} still open"
    return {"total": total, "done": done, "open": total - done, "headline": headline}


@app.get("/todos", tags=["todos"])
async def list_todos(
    store: Store,
    response: Response,
    done: bool | None = None,
    tag: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[Todo]:
    """Todos, filtered by ``done`` and any of the repeated ``tag`` parameters."""
    todos = [
        t
        for t in store.todos.values()
        if (done is None or t.done == done) and (not tag or set(tag) & set(t.tags))
    ]
    response.headers["x-total-count"] = str(len(todos))
    return todos[:limit]


@app.post("/todos", status_code=status.HTTP_201_CREATED, tags=["todos"])
async def create_todo(todo: TodoIn, store: Store, response: Response) -> Todo:
    stored = store.add(todo)
    response.headers["location"] = f"/todos/{stored.id}"
    return stored


@app.get("/todos/summary", tags=["todos"])
async def todo_summary(store: Store, client: IIIClient) -> Summary:
    """Calls the iii function ``todos::summarize`` through the engine, on this loop."""
    todos = [t.model_dump() for t in store.todos.values()]
    result = await client.trigger_async(
        {"function_id": "todos::summarize", "payload": {"todos": todos}}
    )
    return Summary.model_validate(result)


@app.get("/todos/export.csv", tags=["todos"], response_class=FileResponse)
async def export_todos(store: Store) -> FileResponse:
    """A file download (``content-disposition: attachment``)."""
    return FileResponse(store.export_csv(), media_type="text/csv", filename="todos.csv")


@app.get("/todos/{todo_id}", tags=["todos"])
async def get_todo(todo_id: int, store: Store, inv: Invocation, response: Response) -> Todo:
    """One todo; ``x-served-by`` tells whether the request came through the engine."""
    response.headers["x-served-by"] = "iii" if inv.via_engine else "direct"
    return store.get(todo_id)


@app.patch("/todos/{todo_id}", tags=["todos"])
async def update_todo(todo_id: int, patch: TodoPatch, store: Store) -> Todo:
    todo = store.get(todo_id)
    updated = todo.model_copy(update=patch.model_dump(exclude_none=True))
    store.todos[todo_id] = updated
    return updated


@app.delete("/todos/{todo_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["todos"])
async def delete_todo(todo_id: int, store: Store) -> Response:
    store.get(todo_id)
    del store.todos[todo_id]
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@app.get("/todos/{todo_id}/events", tags=["todos"])
async def todo_events(
    todo_id: int,
    store: Store,
    count: Annotated[int, Query(ge=1, le=20)] = 3,
    interval: Annotated[float, Query(ge=0, le=5)] = 0.2,
) -> StreamingResponse:
    """Server-sent events: one ``progress`` event per step, sent as it is produced."""
    todo = store.get(todo_id)

    async def events() -> AsyncIterator[str]:
        for step in range(1, count + 1):
            yield f"event: progress\nid: {step}\ndata: {todo.title} {step}/{count}\n\n"
            await asyncio.sleep(interval)
        yield "event: done\ndata: {}\n\n"

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
    )
