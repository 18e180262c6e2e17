"""File uploads: ``bytes``, ``UploadFile``, several files, files and form fields together."""

import hashlib
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, UploadFile


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/files/")
    async def create_file(file: Annotated[bytes, File()]) -> dict[str, int]:
        return {"file_size": len(file)}

    @app.post("/uploadfile/")
    async def create_upload_file(file: UploadFile) -> dict[str, Any]:
        data = await file.read()
        return {
            "filename": file.filename,
            "content_type": file.content_type,
            "sha256": hashlib.sha256(data).hexdigest(),
        }

    @app.post("/uploadfiles/")
    async def create_upload_files(files: list[UploadFile]) -> dict[str, list[str | None]]:
        return {"filenames": [file.filename for file in files]}

    @app.post("/with-form/")
    async def with_form(
        file: Annotated[bytes, File()], token: Annotated[str, Form()]
    ) -> dict[str, Any]:
        return {"size": len(file), "token": token}

    return app


def check(client: Any) -> None:
    blob = bytes(range(256)) * 800  # 200 KiB, binary
    assert client.post("/files/", files={"file": ("b.bin", blob)}).json() == {"file_size": 204800}
    upload = client.post("/uploadfile/", files={"file": ("r.csv", b"a,b\n1,2\n", "text/csv")})
    assert upload.json() == {
        "filename": "r.csv",
        "content_type": "text/csv",
        "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest(),
    }
    many = client.post(
        "/uploadfiles/", files=[("files", ("a.txt", b"a")), ("files", ("b.txt", b"b"))]
    )
    assert many.json() == {"filenames": ["a.txt", "b.txt"]}
    both = client.post("/with-form/", files={"file": ("x", b"xyz")}, data={"token": "t"})
    assert both.json() == {"size": 3, "token": "t"}
    assert client.post("/files/").status_code == 422
