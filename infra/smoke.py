"""Smoke test of a running DishLens: the app answers its health path, and the API names the dish
in a photo. CI runs it against the image it just built; deploy.yml runs it through the load
balancer after each release and rolls back when it fails.

Standard library only, so that it runs on a bare CI runner. The photo is a PNG drawn here (a
plate-like disc on a table colour), so no photo is stored in the repository; what the smoke
test proves is that the model loaded and answers, not that it is right.

    python infra/smoke.py --app https://dishlens.example.com
    python infra/smoke.py --app http://127.0.0.1:8501 --api http://127.0.0.1:8000 --readiness

Exit status 0: both answered as expected; 1: one did not before the deadline (the reason is
printed). ``DISHLENS_API_KEY``, when set, is sent as ``X-Api-Key``.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

APP_HEALTH = "/_stcore/health"
READINESS = "/readyz"
LABELS = "/v1/labels"
CLASSIFY = "/v1/classify"
PHOTO_FIELD = "photo"


class SmokeError(Exception):
    """The service answered, but not as a healthy DishLens does."""


def png_photo(size: int = 224) -> bytes:
    """An RGB PNG of a light disc (the plate) with a darker centre on a wooden colour."""
    centre, plate, food = size / 2, (size * 0.45) ** 2, (size * 0.25) ** 2
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # filter type 0 for the scanline
        for x in range(size):
            distance = (x - centre) ** 2 + (y - centre) ** 2
            row += bytes((150, 70, 30) if distance < food else (235, 232, 225))
            if distance >= plate:
                row[-3:] = bytes((120, 84, 52))
        rows.append(bytes(row))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def multipart(field: str, filename: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
    ).encode()
    return (
        head + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


def request(
    url: str,
    *,
    headers: dict[str, str],
    body: bytes | None = None,
    timeout: float = 30.0,
) -> tuple[int, bytes]:
    """``(status, body)``; HTTP error statuses are returned, not raised."""
    call = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(call, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def check_app(base: str, headers: dict[str, str]) -> str:
    status, body = request(base + APP_HEALTH, headers=headers)
    if status != 200:
        raise SmokeError(f"{APP_HEALTH} answered {status}")
    return f"app {APP_HEALTH}: {body.decode(errors='replace').strip()}"


def check_api(base: str, headers: dict[str, str], *, readiness: bool = False) -> str:
    if readiness:  # only on the task itself: the load balancer does not route /readyz
        status, body = request(base + READINESS, headers=headers)
        if status != 200:
            raise SmokeError(f"{READINESS} answered {status}: {body[:200]!r}")
    status, body = request(base + LABELS, headers=headers)
    if status != 200:
        raise SmokeError(f"{LABELS} answered {status}: {body[:200]!r}")
    known = {item["label"] for item in json.loads(body)["labels"]}
    data, content_type = multipart(PHOTO_FIELD, "smoke.png", "image/png", png_photo())
    status, body = request(
        base + CLASSIFY, headers=headers | {"Content-Type": content_type}, body=data
    )
    if status != 200:
        raise SmokeError(f"{CLASSIFY} answered {status}: {body[:300]!r}")
    answer: dict[str, Any] = json.loads(body)
    top = [dish["label"] for dish in answer["top"]]
    if not top or not set(top) <= known:
        raise SmokeError(f"{CLASSIFY} named dishes the model does not know: {top}")
    return (
        f"api {CLASSIFY}: {answer['status']}, top {top[0]} ({answer['top'][0]['probability']:.2f})"
    )


def until_deadline(check: Callable[[], str], deadline: float, pause: float) -> str:
    """Run ``check`` until it passes or ``deadline`` (monotonic) passes; tasks still starting
    answer 502/503 or refuse connections for a while."""
    while True:
        try:
            return check()
        except (SmokeError, OSError, ValueError, KeyError) as error:
            if time.monotonic() + pause > deadline:
                raise SmokeError(str(error)) from error
            time.sleep(pause)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", required=True, help="base URL of the Streamlit app")
    parser.add_argument("--api", help="base URL of the JSON API (default: the --app URL)")
    readiness = "also require /readyz (a task reached directly, not through the load balancer)"
    parser.add_argument("--readiness", action="store_true", help=readiness)
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait in all (default: 300)"
    )
    parser.add_argument(
        "--pause", type=float, default=5.0, help="seconds between tries (default: 5)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    headers = {"User-Agent": "dishlens-smoke/1"}
    if os.environ.get("DISHLENS_API_KEY"):
        headers["X-Api-Key"] = os.environ["DISHLENS_API_KEY"]
    app, api = args.app.rstrip("/"), (args.api or args.app).rstrip("/")
    deadline = time.monotonic() + args.timeout
    try:
        print(until_deadline(partial(check_app, app, headers), deadline, args.pause))
        check_ready_api = partial(check_api, api, headers, readiness=args.readiness)
        print(until_deadline(check_ready_api, deadline, args.pause))
    except SmokeError as error:
        print(f"smoke test failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
