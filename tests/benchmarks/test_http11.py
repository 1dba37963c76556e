"""The load generator's HTTP/1.1 client against small scripted servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from benchmarks.http11 import Connection, ProtocolError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[bool]]


async def read_request(reader: asyncio.StreamReader, body: bool = True) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length) if body else b""


def ok(content: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(content), extra, content)


async def serve(handler: Handler, client: Callable[[Connection], Awaitable[object]]) -> object:
    """Run ``client`` against a server that calls ``handler(reader, writer, n)`` for the n-th
    request on each connection until it returns False (then closes the connection)."""

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = 0
        try:
            while await handler(reader, writer, n):
                n += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = Connection("127.0.0.1", port)
    async with server:
        try:
            return await client(connection)
        finally:
            connection.close()
            await asyncio.sleep(0.05)  # let the handlers see the end of their connections


def run(handler: Handler, client: Callable[[Connection], Awaitable[object]]) -> object:
    return asyncio.run(serve(handler, client))


def post_times(count: int, body: bytes = b"x") -> Callable[[Connection], Awaitable[object]]:
    """A client that posts ``body`` ``count`` times; it returns the answers and how many
    connections it opened and requests it sent again."""

    async def client(connection: Connection) -> object:
        answers = [await connection.post("/", body, "a/b") for _ in range(count)]
        return answers, (connection.opened, connection.retried)

    return client


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
    body = await read_request(reader)
    writer.write(ok(body[::-1]))
    await writer.drain()
    return True


def test_answers_come_back_on_one_kept_alive_connection() -> None:
    async def client(connection: Connection) -> object:
        first = await connection.post("/a", b"abc", "text/plain")
        second = await connection.post("/b", b'{"x": 1}', "application/json")
        return first, second, connection.opened

    first, second, opened = run(echo, client)

    assert (first.status_code, first.content) == (200, b"cba")
    assert second.content == b'}1 :"x"{'
    assert opened == 1


def test_a_chunked_answer_is_put_back_together() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\ncontent-type: a/b\r\n\r\n"
            b"4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\ntrailer: x\r\n\r\n"
        )
        return True

    answer = run(chunked, lambda c: c.post("/", b"", "a/b"))

    assert (answer.status_code, answer.content) == (201, b"Wikipedia ")
    assert answer.headers["content-type"] == "a/b"


def test_an_answer_that_ends_with_the_connection_is_read_to_the_end() -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int):
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nall of it")
        return False

    answers, (opened, retried) = run(until_close, post_times(2))

    assert [a.content for a in answers] == [b"all of it"] * 2
    assert (opened, retried) == (2, 0)  # closed after the first answer, not found closed


def test_a_kept_alive_connection_the_server_closed_is_retried_once_on_a_new_one() -> None:
    async def one_per_connection(reader: asyncio.StreamReader, writer, n: int) -> bool:
        if n == 1:  # the next request on this connection: close without answering
            await read_request(reader)
            return False
        await read_request(reader)
        writer.write(ok(b"fine"))
        await writer.drain()
        return True

    answers, (opened, retried) = run(one_per_connection, post_times(3))

    # Requests 2 and 3 each found their kept-alive connection closed and went on a new one.
    assert [a.content for a in answers] == [b"fine"] * 3
    assert (opened, retried) == (3, 2)


def test_a_new_connection_closed_before_any_answer_is_an_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer, n: int) -> bool:
        await read_request(reader)
        return False

    with pytest.raises(asyncio.IncompleteReadError):
        run(hang_up, lambda c: c.post("/", b"x", "a/b"))


def test_an_early_answer_to_a_large_body_counts_and_the_connection_is_renewed() -> None:
    async def refuse_early(reader: asyncio.StreamReader, writer, n: int) -> bool:
        await read_request(reader, body=False)  # the 8 MB body is never read
        writer.write(ok(b"too large", b"connection: close\r\n").replace(b"200 OK", b"413 Big"))
        await writer.drain()
        return False

    answers, (opened, retried) = run(refuse_early, post_times(2, b"\0" * (8 << 20)))

    assert [(a.status_code, a.content) for a in answers] == [(413, b"too large")] * 2
    assert (opened, retried) == (2, 0)


@pytest.mark.parametrize(
    "answer",
    [
        b"SMTP 220 hello\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nx: " + b"y" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + b"1" * 70_000 + b"\r\n",
    ],
    ids=[
        "not-http",
        "bad-status",
        "bad-header",
        "bad-length",
        "bad-chunk",
        "long-head",
        "long-size",
    ],
)
def test_malformed_answers_are_protocol_errors(answer: bytes) -> None:
    async def malformed(reader: asyncio.StreamReader, writer, n: int) -> bool:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        return True

    with pytest.raises(ProtocolError):
        run(malformed, lambda c: c.post("/", b"", "a/b"))
