"""A scripted OpenAI-compatible chat server for tests and the benchmark: a threaded
``http.server`` on 127.0.0.1 answering ``POST /v1/chat/completions`` with SSE streams."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.servers import LoopbackHTTPServer

DEFAULT_TEXT = ("Apple pie ", "is a baked ", "dessert.")


@dataclass
class Reply:
    """What the server does for one request.

    ``events`` are raw SSE payloads (after ``data: ``); when None they are built from ``text``.
    ``cut_after`` closes the connection after that many events, mid-body. ``hang`` never answers.
    ``endless`` repeats ``text`` until the client hangs up, ``every`` seconds apart (a server
    that never stops); ``raw`` answers 200 with ``(content type, body)`` instead of a stream.
    """

    status: int = 200
    text: Sequence[str] = DEFAULT_TEXT
    finish: str | None = "stop"
    events: Sequence[str] | None = None
    done: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    cut_after: int | None = None
    hang: bool = False
    endless: bool = False
    every: float = 0.0
    raw: tuple[str, bytes] | None = None

    def sse_events(self) -> list[str]:
        if self.events is not None:
            return list(self.events)
        events = [chunk_json(delta) for delta in self.text]
        if self.finish is not None:
            events.append(chunk_json(None, finish=self.finish))
        return events + (["[DONE]"] if self.done else [])


def _endless(reply: Reply, stop: threading.Event) -> Iterator[str]:
    """``reply.text``'s chunks over and over, until ``stop`` or a 60 s safety limit."""
    deadline = time.monotonic() + 60  # clients hang up long before
    while time.monotonic() < deadline and not stop.is_set():
        yield from (chunk_json(delta) for delta in reply.text)


def chunk_json(content: str | None, *, finish: str | None = None) -> str:
    delta = {"role": "assistant", "content": content} if content is not None else {}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return json.dumps({"id": "c1", "object": "chat.completion.chunk", "choices": [choice]})


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class ChatServer:
    """A threaded ``http.server`` answering ``POST /v1/chat/completions``; ``url`` is its base."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        self.release = threading.Event()
        self._httpd = _QuietServer(_handler_for(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if self.replies else Reply()

    def start(self) -> ChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


class _QuietServer(LoopbackHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients closing keep-alive or abandoned connections are part of the scripts.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


def _handler_for(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 5  # idle keep-alive connections give up their thread

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            server.received.append(Received(self.path, headers, json.loads(raw), time.monotonic()))
            reply = server.next_reply()
            if self.path != "/v1/chat/completions":
                reply = Reply(status=404, body={"error": "no such route"})
            if reply.hang:
                server.release.wait(30)
                self.close_connection = True
            elif reply.raw is not None:
                self._send_body(200, *reply.raw)
            elif reply.status != 200:
                payload = json.dumps(reply.body or {"error": {"message": "scripted"}}).encode()
                self._send_body(reply.status, "application/json", payload, reply.headers)
            else:
                self._send_stream(reply)

        def _send_body(
            self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": content_type, **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_stream(self, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            events = _endless(reply, server.release) if reply.endless else reply.sse_events()
            for index, event in enumerate(events):
                if reply.cut_after is not None and index >= reply.cut_after:
                    self.close_connection = True  # no terminating chunk: a broken stream
                    return
                data = f"data: {event}\n\n".encode()
                self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
                time.sleep(reply.every)
            self.wfile.write(b"0\r\n\r\n")

    return Handler
