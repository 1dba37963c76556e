"""A lean HTTP/1.1 client for the load generator: one kept-alive connection per sender.

The load generator shares the server's cores, so every millisecond it spends is taken from the
server it measures. Measured with ``py-spy`` and ``getrusage`` on 2 cores (1,000 photos at
concurrency 8), httpx's ``AsyncClient`` spent about 2 ms of CPU per request, more than the API's
own web process (1.3 ms). This client writes a request as one buffer on an open connection and
reads the answer with two stream reads; it speaks just the HTTP/1.1 the API needs:

- ``Content-Length`` and ``chunked`` answers, and answers that end when the connection closes;
- keep-alive, with one retry on a fresh connection when a kept-alive one turns out to have been
  closed by the server before it answered (what any HTTP client does);
- a server that answers before reading the whole body (an oversize upload refused at its
  ``Content-Length``): the answer counts, and the connection is dropped if sending failed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

HEAD_LIMIT = 64 * 1024
WRITE_CHUNK = 256 * 1024


class ProtocolError(ValueError):
    """The server's answer is not HTTP/1.x as this client understands it."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer; header names are lower case."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


class Connection:
    """A kept-alive connection to ``host:port``, opened on first use and reopened as needed.

    Not for concurrent use: one sender, one connection.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.opened = 0  # connections opened so far
        self.retried = 0  # requests sent again after a kept-alive connection turned out closed
        host_in_url = f"[{host}]" if ":" in host else host
        self._authority = f"{host_in_url}:{port}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, target: str, body: bytes, content_type: str) -> Answer:
        """``POST target`` with ``body``; the server's answer, whatever its status.

        Raises:
            ConnectionError, asyncio.IncompleteReadError: the connection failed or closed
                before a whole answer came (also after one retry on a fresh connection).
            ProtocolError: the answer is malformed.
        """
        head = (
            f"POST {target} HTTP/1.1\r\nhost: {self._authority}\r\n"
            f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        request = head + body
        reused = self._writer is not None
        try:
            return await self._exchange(request)
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            self.close()
            if not (reused and _closed_before_answering(error)):
                raise
        self.retried += 1
        return await self._exchange(request)

    async def _exchange(self, request: bytes) -> Answer:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=HEAD_LIMIT
            )
            self.opened += 1
        reader, writer = self._reader, self._writer
        # Read while the body is still going out: the server may answer before reading it all.
        sending = asyncio.ensure_future(send_all(writer, request))
        try:
            answer, keep_alive = await read_answer(reader)
        except BaseException:
            sending.cancel()
            self.close()
            raise
        try:
            await sending
        except ConnectionError:
            keep_alive = False
        if not keep_alive:
            self.close()
        return answer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def send_all(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write ``data`` in pieces, waiting for each to drain: asyncio buffers what a socket does
    not take at once in a bytearray that it trims from the front after every send, which for a
    10 MB upload cost more than 100 ms of CPU."""
    view = memoryview(data)
    for start in range(0, len(view), WRITE_CHUNK):
        writer.write(view[start : start + WRITE_CHUNK])
        await writer.drain()


def _closed_before_answering(error: Exception) -> bool:
    if isinstance(error, asyncio.IncompleteReadError):
        return not error.partial
    return isinstance(error, ConnectionResetError | BrokenPipeError)


async def read_answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
    """The next answer on ``reader`` and whether the connection stays open after it.

    Raises:
        asyncio.IncompleteReadError: the connection closed part-way.
        ProtocolError: the status line, a header or the framing is malformed.
    """
    head = await read_until(reader, b"\r\n\r\n")
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    status = rest[:3]
    if not version.startswith("HTTP/1.") or not status.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise ProtocolError(f"malformed header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        content = await read_chunked(reader)
    elif "content-length" in headers:
        length = headers["content-length"]
        if not length.isdigit():
            raise ProtocolError(f"bad content-length: {length[:20]!r}")
        content = await reader.readexactly(int(length))
    else:
        content, keep_alive = await reader.read(), False
    return Answer(int(status), headers, content), keep_alive


async def read_until(reader: asyncio.StreamReader, separator: bytes) -> bytes:
    try:
        return await reader.readuntil(separator)
    except asyncio.LimitOverrunError as error:
        raise ProtocolError(f"a line of the answer is longer than {HEAD_LIMIT} bytes") from error


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = (await read_until(reader, b"\r\n"))[:-2].split(b";")[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size: {size_line[:20]!r}") from None
        if size == 0:
            while await read_until(reader, b"\r\n") != b"\r\n":  # trailers, if any
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("chunk not followed by CRLF")
