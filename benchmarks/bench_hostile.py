"""Hostile-load benchmark: a normal upload's latency on an idle API against the same API while
18 slow clients and 2 scan bombs are active.

The API runs as deployed (``uvicorn api.main:app`` with its worker processes, default
settings) on a loopback port. The slow clients each send the headers of a 5 MB upload and then
one byte a second (on 2 cores, 18 is the model threads plus ``API_QUEUE_SIZE``: every place the
API has); two more clients send JPEG scan bombs (16 megapixels, 5,000 empty scans: 8.6 s of
libjpeg work each when decoded without the scan limit) back to back. The printed ratio is the
median latency under that load over the median on the idle server. Target: at most 2.

Run: ``python3 -m benchmarks.bench_hostile`` (``--uploads`` timed uploads per phase).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from PIL import Image

from benchmarks.common import count_parser
from tests.intake.photos import scan_bomb

REPO_ROOT = Path(__file__).resolve().parents[1]

SLOW_CLIENTS = 18
SCAN_BOMBS = 2


def get_args_parser() -> argparse.ArgumentParser:
    return count_parser(__doc__, "--uploads", 30, "timed uploads per phase")


def normal_photo() -> bytes:
    gradient = Image.linear_gradient("L").resize((1600, 1200))
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_180), gradient))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@contextlib.contextmanager
def api_server() -> Iterator[str]:
    """``uvicorn api.main:app`` on a free loopback port; its base URL once ready."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=dict(os.environ))
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not _ready(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=2, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


def upload_latencies(base_url: str, photo: bytes, count: int) -> list[float]:
    """Seconds per upload, one after another; every answer must be 200."""
    files = {"photo": ("dish.jpg", photo, "image/jpeg")}
    latencies = []
    with httpx.Client(base_url=base_url, timeout=120, trust_env=False) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = client.post("/v1/classify", files=files)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"a normal upload got {response.status_code}: {response.text}")
    return latencies


def slow_client(base_url: str, stop: threading.Event) -> None:
    """Headers of a 5 MB upload, then a byte a second; reconnects when the server hangs up."""
    port = int(base_url.rsplit(":", 1)[1])
    while not stop.is_set():
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 5000000\r\n\r\n"
            )
            while not stop.wait(1.0):
                sock.sendall(b"x")


def bomber(base_url: str, bomb: bytes, stop: threading.Event, refused: list[int]) -> None:
    files = {"photo": ("bomb.jpg", bomb, "image/jpeg")}
    with httpx.Client(base_url=base_url, timeout=120, trust_env=False) as client:
        while not stop.is_set():
            refused.append(client.post("/v1/classify", files=files).status_code)


def main(args: argparse.Namespace) -> None:
    photo, bomb = normal_photo(), scan_bomb()
    with api_server() as base_url:
        upload_latencies(base_url, photo, 3)  # warm-up
        idle = statistics.median(upload_latencies(base_url, photo, args.uploads))
        stop, statuses = threading.Event(), list[int]()
        threads = [
            threading.Thread(target=slow_client, args=(base_url, stop), daemon=True)
            for _ in range(SLOW_CLIENTS)
        ]
        threads += [
            threading.Thread(target=bomber, args=(base_url, bomb, stop, statuses), daemon=True)
            for _ in range(SCAN_BOMBS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(2.0)  # every slow client connected, bombs flowing
        try:
            hostile = statistics.median(upload_latencies(base_url, photo, args.uploads))
        finally:
            stop.set()
    print(f"normal upload, idle server:                  median {idle * 1000:7.1f} ms")
    print(
        f"with {SLOW_CLIENTS} slow clients and {SCAN_BOMBS} scan bombs:      "
        f"median {hostile * 1000:7.1f} ms"
    )
    print(f"scan bomb answers: {len(statuses)} ({sorted(set(statuses))})")
    print(f"ratio (hostile / idle): {hostile / idle:.2f}  (target: at most 2)")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
