"""CoalescingTransport: writes of one loop iteration leave as one, in order, over a real socket."""

from __future__ import annotations

import asyncio
from typing import Any

from iii._transport import FLUSH_AT, CoalescingTransport


class _Counting:
    """Counts the calls a real transport receives (the transport itself does the work)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[int] = []  # bytes per write / writelines call

    def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        self.transport.write(data)

    def writelines(self, lines: list[bytes]) -> None:
        self.writes.append(sum(len(d) for d in lines))
        self.transport.writelines(lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def _pair() -> tuple[asyncio.StreamReader, _Counting, CoalescingTransport, Any]:
    accepted: asyncio.Future[asyncio.StreamReader] = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(reader)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    counting = _Counting(transport)  # type: ignore[arg-type]
    wrapped = CoalescingTransport(counting, loop)  # type: ignore[arg-type]
    return await accepted, counting, wrapped, server


async def test_writes_of_one_iteration_leave_as_one_in_order() -> None:
    reader, counting, wrapped, server = await _pair()
    wrapped.write(b"head,")
    wrapped.write(b"body")
    assert counting.writes == []  # nothing written yet in this iteration
    assert wrapped.get_write_buffer_size() == 9
    assert await reader.readexactly(9) == b"head,body"
    assert counting.writes == [9]
    wrapped.write(b"next")
    assert await reader.readexactly(4) == b"next"
    assert counting.writes == [9, 4]
    wrapped.close()
    server.close()


async def test_large_writes_and_close_do_not_wait() -> None:
    reader, counting, wrapped, server = await _pair()
    wrapped.write(b"x" * FLUSH_AT)
    assert counting.writes == [FLUSH_AT]  # written through at once
    wrapped.write(b"a")
    wrapped.write(b"b" * FLUSH_AT)  # the pending bytes pass the limit: flushed at once
    assert counting.writes == [FLUSH_AT, FLUSH_AT + 1]
    wrapped.write(b"tail")
    wrapped.close()  # pending data goes out before the close
    assert counting.writes == [FLUSH_AT, FLUSH_AT + 1, 4]
    data = await reader.read()  # until EOF
    assert data == b"x" * FLUSH_AT + b"a" + b"b" * FLUSH_AT + b"tail"
    server.close()
