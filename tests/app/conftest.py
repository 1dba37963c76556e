"""Fixtures for the app tests: loopback servers, photos and model copies with forced verdicts."""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from classifier.artifact import seal_card
from classifier.predictor import DEFAULT_MODEL_DIR
from tests.conftest import FOOD_MNIST
from tests.support.chat_server import ChatServer
from tests.support.servers import LoopbackHTTPServer, served_in_thread

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
# The model thresholds that force each verdict, whatever the photo (see ``forced_model``).
FORCED_THRESHOLDS = {
    "confident": {"unsure_probability": 0.0, "min_food_score": -1e30},
    "unsure": {"unsure_probability": 1.01, "min_food_score": -1e30},
    "not_food": {"unsure_probability": 0.0, "min_food_score": 1e30},
}


@pytest.fixture(autouse=True)
def hub_on_loopback(hub_sends_to_loopback: None) -> None:
    """huggingface_hub may send requests here (to the loopback chat server only)."""


@pytest.fixture(autouse=True)
def feedback_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Feedback of every app test goes to its own temporary folder, never to ./feedback."""
    folder = tmp_path / "feedback"
    monkeypatch.setenv("FEEDBACK_URI", str(folder))
    return folder


@pytest.fixture(autouse=True)
def main_module_restored() -> Iterator[None]:
    """Streamlit's script runner installs ``app.py`` as ``__main__`` and leaves it there; a later
    test that spawns a process (the API's model workers) would then run ``app.py`` in the child
    first, as spawn re-imports the parent's main module."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def run_app() -> Callable[[], AppTest]:
    """Run ``app.py`` once, as a fresh browser session would, and return the AppTest."""

    def run() -> AppTest:
        # Generous: the first run imports torch and loads the model on a busy 2-core machine.
        return AppTest.from_file(APP, default_timeout=120).run()

    return run


# ---------------------------------------------------------------------------------------------
# PHOTOS


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def dish_jpeg() -> bytes:
    """A real food photo: a Food-101 bibimbap when ../shared is there, else skimage's coffee."""
    photos = sorted((FOOD_MNIST / "images" / "bibimbap").glob("*.jpg"))
    if photos:
        return photos[0].read_bytes()
    from skimage import data

    return _jpeg(Image.fromarray(data.coffee()))


@pytest.fixture(scope="session")
def not_food_jpeg() -> bytes:
    """A photo with no food in it (skimage's astronaut)."""
    from skimage import data

    return _jpeg(Image.fromarray(data.astronaut()))


# ---------------------------------------------------------------------------------------------
# MODELS


@pytest.fixture(scope="session")
def forced_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """A copy of the default model whose card thresholds force one verdict for every photo.

    Only ``card.json`` changes (sealed again with its new checksum): the real weights still
    compute the real top-3, only the status is forced.
    """
    made: dict[str, str] = {}

    def make(status: str) -> str:
        if status not in made:
            target = tmp_path_factory.mktemp(f"model-{status}") / "model"
            shutil.copytree(DEFAULT_MODEL_DIR, target)
            card = json.loads((target / "card.json").read_text())
            card["thresholds"].update(FORCED_THRESHOLDS[status])
            (target / "card.json").write_text(json.dumps(seal_card(card)))
            made[status] = str(target)
        return made[status]

    return make


# ---------------------------------------------------------------------------------------------
# LOOPBACK IMAGE SERVER


@pytest.fixture(scope="session")
def image_server(dish_jpeg: bytes) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 with ``/dish.jpg`` and ``/page.jpg`` (HTML)."""
    routes = {
        "/dish.jpg": ("image/jpeg", dish_jpeg),
        "/page.jpg": ("image/jpeg", b"<!doctype html><html><body>Not a photo</body></html>"),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in routes:
                self.send_error(404)
                return
            content_type, body = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    with served_in_thread(LoopbackHTTPServer(Handler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


# ---------------------------------------------------------------------------------------------
# OPENAI-COMPATIBLE CHAT SERVER (the chat package's scripted server)

LLM_API_KEY = "sk-test-not-a-real-key"


@pytest.fixture
def chat_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatServer]:
    """The scripted SSE server on 127.0.0.1, with LLM_BASE_URL and a dummy LLM_API_KEY set."""
    server = ChatServer().start()
    monkeypatch.setenv("LLM_BASE_URL", server.url)
    monkeypatch.setenv("LLM_API_KEY", LLM_API_KEY)
    monkeypatch.setenv("LLM_MAX_RETRIES", "1")
    yield server
    server.stop()
