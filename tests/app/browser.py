"""Run ``streamlit run app.py`` on a loopback port and drive it with Debian's Chromium.

Shared by the browser test and ``benchmarks.bench_app``. Playwright never downloads a
browser here: Chromium comes from the system (``apt-get install chromium``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Chromium's stand-in camera (a moving test pattern) and an automatic "allow" to its prompt.
FAKE_CAMERA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
RESULT_CAPTION = "The model answered in"


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def wait_healthy(
    url: str, process: subprocess.Popen, timeout: float = 60.0, *, path: str = "/_stcore/health"
) -> float:
    """Seconds until ``url + path`` answers 200; raises if the server dies or stalls."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} was not healthy after {timeout:.0f} s")


@contextmanager
def serving(
    command: list[str], env: Mapping[str, str], *, health: str, log_path: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen, float]]:
    """Run ``command`` (``{port}`` in it becomes a free loopback port) until the block ends;
    yields ``(base_url, process, seconds_to_healthy)``."""
    port = free_port()
    command = [part.format(port=port) for part in command]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, path=health)
        yield url, process, time.perf_counter() - started
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if not isinstance(log, int):  # a file we opened, not DEVNULL
            log.close()


def api_server(env: Mapping[str, str]):
    """``uvicorn api.main:app`` on a loopback port, as a :func:`serving` context."""
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"]
    return serving([*command, "--port", "{port}"], env, health="/healthz")


def streamlit_server(
    env: Mapping[str, str], *, log_path: Path | None = None, launcher: bool = True
) -> AbstractContextManager[tuple[str, subprocess.Popen, float]]:
    """Start the app; yields ``(base_url, process, seconds_to_healthy)`` and stops it after.

    ``launcher``: start it as the image does, ``python launch_app.py`` (the model loads before
    the server answers); ``False``: plain ``streamlit run app.py`` (it loads on the first visit).
    """
    start = ["launch_app.py"] if launcher else ["-m", "streamlit", "run", "app.py"]
    command = [
        sys.executable, *start,
        "--server.port", "{port}",
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
    ]  # fmt: skip
    return serving(command, env, health="/_stcore/health", log_path=log_path)


def launch_chromium(playwright, *, fake_camera: bool = False):
    args = CHROMIUM_ARGS + (FAKE_CAMERA_ARGS if fake_camera else [])
    return playwright.chromium.launch(executable_path=chromium_path(), args=args, headless=True)


def open_app(browser, url: str, *, width: int = 1280, height: int = 1000, phone: bool = False):
    """A fresh page on the app (in a context of its own), once its title is drawn."""
    page = browser.new_page(
        viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone,
        permissions=["camera"],
    )  # fmt: skip
    page.goto(url, wait_until="domcontentloaded", timeout=120_000)
    page.get_by_role("heading", name="DishLens").first.wait_for(timeout=120_000)
    return page


def upload_photo(page, photo: Path, *, timeout_ms: float = 60_000) -> float:
    """Upload ``photo`` in the upload tab; returns seconds until the dish result is drawn."""
    page.get_by_role("tab", name="Upload a photo").click()
    chooser = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    started = time.perf_counter()
    chooser.set_input_files(str(photo))
    page.get_by_text(RESULT_CAPTION).wait_for(timeout=timeout_ms)
    return time.perf_counter() - started


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children, from /proc."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total
