"""Close the connection after answering a request whose large body was left unread.

When the API refuses a request before reading its body (a declared size over the cap, a body
that is not multipart or JSON, an invalid ``top_k``), uvicorn keeps the connection open for
the next request, and to get there it first reads the rest of the body and throws it away:
all of a 10 MB upload, or of a 10 GB one. Answering with ``Connection: close`` instead ends the
connection once the answer is sent, so the server reads no more and the client can stop sending.
Small bodies are left alone: reading them costs less than a new connection.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Bodies up to this size are read to the end (uvicorn's own read-ahead limit is 64 KiB).
SMALL_BODY_BYTES = 64 * 1024


class CloseAfterUnreadBody:
    """ASGI middleware: ``Connection: close`` on answers to requests with a body over
    ``small_body_bytes`` (declared, or sent chunked) that the app did not read to the end."""

    def __init__(self, app: ASGIApp, small_body_bytes: int = SMALL_BODY_BYTES) -> None:
        self.app = app
        self.small_body_bytes = small_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._large_body(scope):
            await self.app(scope, receive, send)
            return
        body_read = False

        async def receive_and_note() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read = True  # the last part of the body (or the client has gone)
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_read:
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive_and_note, send_closing)

    def _large_body(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit():
            return int(declared) > self.small_body_bytes
        return b"chunked" in headers.get(b"transfer-encoding", b"").lower()
