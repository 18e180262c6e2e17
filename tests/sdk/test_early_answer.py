"""``iii.context.early_answer``: a handler marked ``iii_answers_early`` (the ASGI bridge's)
answers its invocation before it returns, in memory and on a socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from iii import IIIInvocationError
from iii.context import early_answer
from iii_asgi.engine import Engine
from tests.helpers import acall_until_found, connected, wait_until


@pytest.mark.parametrize("transport", ["memory", "websocket"])
async def test_the_caller_gets_the_early_answer_while_the_handler_goes_on(
    local_engine: Engine, transport: str
) -> None:
    caller = await connected(local_engine.url)
    executor = await connected(local_engine.url, transport=transport)
    release = asyncio.Event()
    seen: list[Any] = []

    async def handler(data: Any) -> str:
        answer = early_answer()
        assert answer is not None
        seen.append(answer({"status": "early", "n": data["n"]}))
        seen.append(answer("twice"))  # one answer per invocation
        await release.wait()
        seen.append("finished")
        return "dropped"  # answered already: not sent

    handler.iii_answers_early = True  # type: ignore[attr-defined]
    try:
        executor.register_function("e::early", handler)
        result = await acall_until_found(caller, {"function_id": "e::early", "payload": {"n": 1}})
        assert result == {"status": "early", "n": 1}
        assert seen == [True, False]  # the handler still runs
        release.set()
        await wait_until(lambda: seen[-1] == "finished")
        core = local_engine.core
        assert core is not None
        assert core.invoker.pending == {}
    finally:
        await caller.shutdown_async()
        await executor.shutdown_async()


async def test_a_failure_after_the_early_answer_is_only_logged(
    local_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caller = await connected(local_engine.url)
    executor = await connected(local_engine.url)

    async def handler(data: Any) -> None:
        answer = early_answer()
        assert answer is not None
        answer("ok")
        await asyncio.sleep(0)
        raise RuntimeError("after the answer")

    handler.iii_answers_early = True  # type: ignore[attr-defined]
    try:
        executor.register_function("e::fails_late", handler)
        assert await acall_until_found(caller, {"function_id": "e::fails_late"}) == "ok"
        await wait_until(lambda: "after the answer" in caplog.text)
    finally:
        await caller.shutdown_async()
        await executor.shutdown_async()


async def test_no_early_answer_unless_marked(local_engine: Engine) -> None:
    caller = await connected(local_engine.url)
    executor = await connected(local_engine.url)
    answers: list[Any] = []

    async def plain(data: Any) -> str:
        answers.append(early_answer())
        return "plain"

    try:
        assert early_answer() is None  # outside any handler
        executor.register_function("e::plain", plain)
        assert await acall_until_found(caller, {"function_id": "e::plain"}) == "plain"
        assert answers == [None]
    finally:
        await caller.shutdown_async()
        await executor.shutdown_async()


async def test_a_result_that_is_not_json_fails_on_a_socket(local_engine: Engine) -> None:
    caller = await connected(local_engine.url)
    executor = await connected(local_engine.url, transport="websocket")

    async def handler(data: Any) -> None:
        answer = early_answer()
        assert answer is not None
        answer({"not": object()})

    handler.iii_answers_early = True  # type: ignore[attr-defined]
    try:
        executor.register_function("e::bad", handler)
        with pytest.raises(IIIInvocationError) as failed:
            await acall_until_found(caller, {"function_id": "e::bad"})
        assert failed.value.code == "invocation_failed"
        assert "not JSON" in failed.value.message
    finally:
        await caller.shutdown_async()
        await executor.shutdown_async()
