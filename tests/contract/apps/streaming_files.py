"""Streaming responses, server-sent events and files."""

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, StreamingResponse

REPORT = b"id,total\n" + b"".join(b"%d,%d\n" % (i, i * 3) for i in range(5000))


def make_app() -> FastAPI:
    app = FastAPI()
    folder = Path(tempfile.mkdtemp(prefix="iii-contract-"))
    (folder / "report.csv").write_bytes(REPORT)

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def numbers() -> AsyncIterator[bytes]:
            for i in range(10):
                yield b"%d\n" % i

        return StreamingResponse(numbers(), media_type="text/plain")

    @app.get("/sync-stream")
    def sync_stream() -> StreamingResponse:
        def chunks() -> Iterator[bytes]:
            yield from (b"\x00\xff" * 1000 for _ in range(5))

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    @app.get("/events")
    async def events() -> StreamingResponse:
        async def sse() -> AsyncIterator[str]:
            for i in range(3):
                yield f"event: tick\ndata: {i}\n\n"

        return StreamingResponse(sse(), media_type="text/event-stream")

    @app.api_route("/report.csv", methods=["GET", "HEAD"])
    def report() -> FileResponse:
        return FileResponse(folder / "report.csv", filename="report.csv", media_type="text/csv")

    return app


def check(client: Any) -> None:
    assert client.get("/stream").text == "".join(f"{i}\n" for i in range(10))
    assert client.get("/sync-stream").content == b"\x00\xff" * 5000
    with client.stream("GET", "/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    assert lines == ["data: 0", "data: 1", "data: 2"]
    report = client.get("/report.csv")
    assert report.content == REPORT
    assert report.headers["content-disposition"] == 'attachment; filename="report.csv"'
    assert report.headers["content-length"] == str(len(REPORT))
    head = client.head("/report.csv")
    assert head.content == b"" and head.headers["content-length"] == str(len(REPORT))
