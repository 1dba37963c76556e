"""infra/smoke.py, the post-deploy smoke test, against the real API on loopback.

The API is the real one (uvicorn, the bundled model). The app's side of the smoke test only
reads Streamlit's health path; a small loopback server answers it here in Streamlit's words,
so that this test does not start a second model-loading server on a 2-core machine."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from PIL import Image

from infra import smoke
from tests.infra.common import ROOT
from tests.support.servers import free_port, spawn_api


class StreamlitHealth(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = self.path == smoke.APP_HEALTH
        self.send_response(200 if found else 404)
        self.end_headers()
        self.wfile.write(b"ok" if found else b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def app_health() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StreamlitHealth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with spawn_api(max_image_mb=10) as base_url:
        yield base_url


def test_the_photo_is_a_real_png():
    photo = Image.open(io.BytesIO(smoke.png_photo()))
    photo.load()
    assert (photo.format, photo.mode, photo.size) == ("PNG", "RGB", (224, 224))
    colours = {photo.getpixel((112, 112)), photo.getpixel((112, 40)), photo.getpixel((2, 2))}
    assert len(colours) == 3  # food, plate, table


def test_smoke_test_passes_against_a_serving_api(app_health, api, capsys):
    assert smoke.main(["--app", app_health, "--api", api, "--readiness", "--timeout", "60"]) == 0
    printed = capsys.readouterr().out
    assert "app /_stcore/health: ok" in printed
    assert "api /v1/classify:" in printed


def test_smoke_test_fails_when_the_model_did_not_load(app_health, capsys):
    port = free_port()
    # An S3 model that cannot be fetched: the server starts and stays unready (a bad local
    # model stops start-up instead, which the API's own tests cover).
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ, MODEL_URI="s3://no-such-bucket/model/", AWS_ENDPOINT_URL=nowhere)
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # up, but never ready
            try:
                if httpx.get(base + "/healthz", trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        arguments = ["--app", app_health, "--api", base, "--timeout", "3", "--pause", "1"]
        through_balancer = smoke.main(arguments)
        at_the_task = smoke.main([*arguments, "--readiness"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert (through_balancer, at_the_task) == (1, 1)
    errors = capsys.readouterr().err
    assert "smoke test failed: /v1/labels answered 503" in errors
    assert "smoke test failed: /readyz answered 503" in errors


def test_smoke_test_fails_when_nothing_listens(capsys):
    closed = f"http://127.0.0.1:{free_port()}"
    assert smoke.main(["--app", closed, "--timeout", "1", "--pause", "0.5"]) == 1
    assert "smoke test failed" in capsys.readouterr().err
