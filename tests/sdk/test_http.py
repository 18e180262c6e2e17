"""iii.http: request/response models, ApiRequest/ApiResponse and the http() streaming wrapper."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel

import iii
from iii import (
    ApiRequest,
    ApiResponse,
    ChannelReader,
    ChannelWriter,
    HttpRequest,
    HttpResponse,
    StreamRequest,
    StreamResponse,
    http,
)
from iii.protocol import encode
from tests.helpers import wait_until


async def call_until_found(client: iii.III, request: dict[str, Any], timeout: float = 5.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await client.trigger_async(request)
        except iii.IIIInvocationError as exc:
            if exc.code != "function_not_found" or loop.time() > deadline:
                raise
            await asyncio.sleep(0.02)


# -- models ---------------------------------------------------------------------------------------


class Order(BaseModel):
    id: int


def test_http_request_defaults_and_generic_body() -> None:
    req = HttpRequest.model_validate({})
    assert (req.path_params, req.query_params, req.headers, req.body, req.method) == (
        {},
        {},
        {},
        None,
        "GET",
    )
    data = {
        "path_params": {"id": "7"},
        "query_params": {"tag": ["a", "b"], "page": "2"},
        "headers": {"accept": "*/*", "x-many": ["1", "2"]},
        "method": "POST",
        "path": "/orders/7",
        "trigger": {"type": "http", "path": "orders/:id", "method": "POST"},
        "body": {"id": 7},
        "request_body": {"channel_id": "c", "access_key": "k", "direction": "read"},
        "response": {"channel_id": "c", "access_key": "k", "direction": "write"},
    }
    typed = HttpRequest[Order].model_validate(data)
    assert typed.body == Order(id=7)
    assert typed.query_params["tag"] == ["a", "b"]
    assert typed.headers["x-many"] == ["1", "2"]
    assert typed.path == "/orders/7" and typed.trigger is not None


def test_http_response_status_code_spellings_serialise_snake_case() -> None:
    for given in ({"status_code": 201}, {"statusCode": 201}):
        response = HttpResponse.model_validate({**given, "body": {"ok": True}})
        expected = {"status_code": 201, "body": {"ok": True}, "headers": {}}
        assert response.model_dump() == expected
        assert response.model_dump(by_alias=True) == expected  # never "statusCode"
    assert HttpResponse(status_code=204).status_code == 204
    assert HttpResponse().status_code == 200
    assert json.loads(encode({"result": HttpResponse(status_code=404, body="no")})) == {
        "result": {"status_code": 404, "body": "no", "headers": {}}
    }


def test_api_response_serialises_to_what_the_engine_reads() -> None:
    response = ApiResponse(status=201, data={"id": 1}, headers={"x-a": "1"})
    expected = {"status_code": 201, "body": {"id": 1}, "headers": {"x-a": "1"}}
    assert response.to_result() == expected
    assert response.model_dump() == expected
    assert json.loads(response.model_dump_json()) == expected
    assert json.loads(encode({"result": response})) == {"result": expected}
    assert ApiResponse.model_validate({"statusCode": 404}).to_result() == {
        "status_code": 404,
        "body": None,
        "headers": {},
    }


def test_api_request_accepts_the_engine_payload() -> None:
    reader = ChannelReader(
        "ws://127.0.0.1:1", {"channel_id": "c", "access_key": "k", "direction": "read"}
    )
    writer = ChannelWriter(
        "ws://127.0.0.1:1", {"channel_id": "c", "access_key": "k", "direction": "write"}
    )
    req = ApiRequest(
        **{
            "path_params": {"id": "1"},
            "query_params": {"q": "x"},
            "body": {"a": 1},
            "headers": {"h": "v"},
            "method": "PUT",
            "path": "/x/1",
            "trigger": {"type": "http"},
            "request_body": reader,
            "response": writer,
        }
    )
    assert req.request_body is reader and req.method == "PUT" and req.body == {"a": 1}
    assert ApiRequest().request_body is None


async def test_http_wrapper_rejects_payloads_without_channels() -> None:
    async def cb(req: StreamRequest, res: StreamResponse) -> None:
        raise AssertionError("not reached")

    handler = http(cb)
    assert handler.__name__ == "cb"
    with pytest.raises(ValueError, match="'request_body'"):
        await handler({"response": None})
    reader = ChannelReader(
        "ws://127.0.0.1:1", {"channel_id": "c", "access_key": "k", "direction": "read"}
    )
    with pytest.raises(ValueError, match="'response'"):
        await handler({"request_body": reader})
    with pytest.raises(TypeError, match="live ChannelWriter"):
        await handler({"request_body": reader, "response": {"channel_id": "c"}})
    with pytest.raises(TypeError, match="request dict"):
        await handler([1])


# -- through a real engine ------------------------------------------------------------------------


async def test_http_wrapper_streams_through_engine_channels(engine: Any) -> None:
    client = iii.III(engine.url)
    seen: dict[str, Any] = {}

    async def upload(req: StreamRequest, res: StreamResponse) -> None:
        seen["req"] = req
        seen["body"] = await req.request_body.read_all()
        await res.status(201)
        await res.headers({"content-type": "text/plain", "x-len": str(len(seen["body"]))})
        await res.writer.write(b"got ")
        await res.stream.write(seen["body"])
        await res.close_async()

    client.register_function("web::upload", http(upload))
    await client.connect()
    try:
        request = await client.create_channel()
        response = await client.create_channel()
        texts: list[str] = []
        response.reader.on_message(texts.append)
        payload = {
            "path_params": {"name": "f.txt"},
            "query_params": {"v": ["1", "2"]},
            "headers": {"content-type": "application/octet-stream"},
            "method": "POST",
            "path": "/upload/f.txt",
            "body": None,
            "trigger": {"type": "http", "path": "upload/:name", "method": "POST"},
            "request_body": request.reader_ref.model_dump(),
            "response": response.writer_ref.model_dump(),
        }
        call = asyncio.ensure_future(
            call_until_found(client, {"function_id": "web::upload", "payload": payload})
        )
        await request.writer.write(b"hello ")
        await request.writer.write(b"world")
        await request.writer.close_async()
        body = await asyncio.wait_for(response.reader.read_all(), 5)
        assert await asyncio.wait_for(call, 5) is None
    finally:
        await client.shutdown_async()
    assert body == b"got hello world"
    assert [json.loads(t) for t in texts] == [
        {"type": "set_status", "status_code": 201},
        {"type": "set_headers", "headers": {"content-type": "text/plain", "x-len": "11"}},
    ]
    req = seen["req"]
    assert req.path_params == {"name": "f.txt"} and req.query_params == {"v": ["1", "2"]}
    assert req.method == "POST" and req.path == "/upload/f.txt"
    assert req.trigger == {"type": "http", "path": "upload/:name", "method": "POST"}


async def test_buffered_responses_reach_the_caller_snake_case(engine: Any) -> None:
    client = iii.III(engine.url)

    async def buffered(req: StreamRequest, res: StreamResponse) -> HttpResponse[Any]:
        return HttpResponse(statusCode=202, body={"echo": req.body}, headers={"x": "1"})

    async def api(data: Any) -> ApiResponse:
        req = ApiRequest(**data)
        return ApiResponse(status=418, data={"method": req.method})

    client.register_function("web::buffered", http(buffered))
    client.register_function("web::api", api)
    await client.connect()
    try:
        request = await client.create_channel()
        response = await client.create_channel()
        payload = {
            "body": {"n": 1},
            "method": "PATCH",
            "request_body": request.reader_ref.model_dump(),
            "response": response.writer_ref.model_dump(),
        }
        first = await call_until_found(client, {"function_id": "web::buffered", "payload": payload})
        second = await call_until_found(client, {"function_id": "web::api", "payload": payload})
    finally:
        await client.shutdown_async()
    assert first == {"status_code": 202, "body": {"echo": {"n": 1}}, "headers": {"x": "1"}}
    assert second == {"status_code": 418, "body": {"method": "PATCH"}, "headers": {}}


async def test_refused_http_invoked_function_is_reported_to_the_worker(
    engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = iii.III(engine.url)
    client.register_function("ext::plain", iii.HttpInvocationConfig(url="http://example.com/x"))
    await client.connect()
    try:
        await wait_until(lambda: client.engine_errors)
        assert client.engine_errors[0]["code"] == "url_validation_failed"
        assert "ext::plain" in caplog.text and "HTTPS is required" in caplog.text
    finally:
        await client.shutdown_async()
