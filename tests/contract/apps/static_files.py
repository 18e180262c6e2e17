"""Static files: a mounted ``StaticFiles`` directory, HTML mode, HEAD, missing files."""

import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles


def make_app() -> FastAPI:
    folder = Path(tempfile.mkdtemp(prefix="iii-static-"))
    (folder / "index.html").write_text("<h1>Home</h1>")
    (folder / "style.css").write_text("body { color: red }")
    (folder / "img").mkdir()
    (folder / "img" / "dot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    app = FastAPI()
    app.mount("/static", StaticFiles(directory=folder), name="static")
    app.mount("/site", StaticFiles(directory=folder, html=True), name="site")

    @app.get("/")
    def root() -> dict[str, str]:
        return {"css": app.url_path_for("static", path="style.css")}

    return app


def check(client: Any) -> None:
    assert client.get("/").json() == {"css": "/static/style.css"}
    css = client.get("/static/style.css")
    assert css.text == "body { color: red }" and css.headers["content-type"].startswith("text/css")
    png = client.get("/static/img/dot.png")
    assert png.content.startswith(b"\x89PNG") and png.headers["content-type"] == "image/png"
    etag = css.headers["etag"]
    assert client.get("/static/style.css", headers={"if-none-match": etag}).status_code == 304
    head = client.head("/static/style.css")
    assert head.status_code == 200 and head.headers["content-length"] == "19"
    assert client.get("/static/missing.txt").status_code == 404
    assert client.get("/site/").text == "<h1>Home</h1>"
    assert client.get("/site").text == "<h1>Home</h1>"  # redirected to /site/
