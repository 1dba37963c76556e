"""The Streamlit app as people meet it: cold start, photo to dish in a real browser, memory.

    python3 -m benchmarks.bench_app [--starts 3] [--uploads 10] [--sessions 5]

Runs ``streamlit run app.py`` on a loopback port and drives Debian's Chromium (Playwright) at
it. Prints:

- cold start, for ``python launch_app.py`` (the model loads before the server answers) and
  for plain ``streamlit run app.py`` (it loads on the first visit): process start to
  ``/_stcore/health`` answering, then seconds after that to a first page that can classify
  (title, model card and upload tab drawn) and to the first photo's verdict, median over
  ``--starts`` fresh processes each (target: a classifying page <= 2 s after health);
- upload to dish shown: from handing the photo to the upload widget to the result being drawn,
  p50/p95 over ``--uploads`` Food-101 validation photos, each in a fresh browser session
  (also the model's own time from the page's caption);
- server RSS with ``--sessions`` concurrent browser sessions that each uploaded a photo and
  asked a question (target <= 1 GB), and the peak RSS of the run.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import percentile, val_photos
from tests.app.browser import (
    RESULT_CAPTION,
    chromium_path,
    launch_chromium,
    open_app,
    rss_bytes,
    streamlit_server,
    upload_photo,
)

MB = 1024 * 1024


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def cold_starts(
    playwright, env: dict[str, str], starts: int, *, launcher: bool, photo: Path
) -> dict[str, list[float]]:
    """Seconds to healthy, then after healthy to a page that can classify and to a verdict."""
    times: dict[str, list[float]] = {"healthy": [], "title": [], "page": [], "verdict": []}
    for _ in range(starts):
        browser = launch_chromium(playwright)  # before the server: not part of the figures
        with streamlit_server(env, launcher=launcher) as (url, _, seconds):
            times["healthy"].append(seconds)
            started = time.perf_counter()
            page = open_app(browser, url)  # returns once the title is drawn
            times["title"].append(time.perf_counter() - started)
            page.get_by_text("Dishes it knows").wait_for(timeout=120_000)
            page.get_by_role("tab", name="Upload a photo").wait_for()
            times["page"].append(time.perf_counter() - started)
            upload_photo(page, photo)
            times["verdict"].append(time.perf_counter() - started)
            browser.close()
    return times


def print_cold_starts(name: str, times: dict[str, list[float]]) -> None:
    for key, what in [
        ("healthy", "start -> health ok"),
        ("title", "health ok -> title drawn"),
        ("page", "health ok -> page ready"),
        ("verdict", "health ok -> 1st verdict"),
    ]:
        runs = ", ".join(f"{s:.2f}" for s in times[key])
        print(f"{name:<18} {what:<26} median {statistics.median(times[key]):6.2f} s  ({runs})")


def uploads(playwright, url: str, photos: list[Path]) -> tuple[list[float], list[float]]:
    shown, model_ms = [], []
    browser = launch_chromium(playwright)
    for photo in photos:
        page = open_app(browser, url)
        page.get_by_text("Dishes it knows").wait_for(timeout=120_000)
        shown.append(upload_photo(page, photo))
        caption = page.get_by_text(RESULT_CAPTION).inner_text()
        answered = re.search(r"answered in (\d+) ms", caption)
        if answered is None:
            raise RuntimeError(f"no model time in the caption {caption!r}")
        model_ms.append(float(answered.group(1)))
        page.close()
    browser.close()
    return shown, model_ms


def concurrent_sessions(playwright, url: str, pid: int, photos: list[Path]) -> int:
    """Server RSS once ``len(photos)`` live sessions have each uploaded a photo and asked."""
    browser = launch_chromium(playwright)
    pages = [open_app(browser, url) for _ in photos]
    for page, photo in zip(pages, photos, strict=True):  # all uploads in flight together
        page.get_by_role("tab", name="Upload a photo").click()
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
    for page in pages:
        page.get_by_text(RESULT_CAPTION).wait_for(timeout=120_000)
        suggestion = page.locator(".st-key-suggest_ingredients button")
        if suggestion.count():  # not-food verdicts offer no chat
            suggestion.click()
            answer = page.locator('[data-testid="stChatMessage"]').filter(has_text="ngredients")
            answer.nth(1).wait_for(timeout=120_000)
    rss = rss_bytes(pid)
    browser.close()
    return rss


def main(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    if chromium_path() is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    photos = val_photos(max(args.uploads, args.sessions))
    with tempfile.TemporaryDirectory() as feedback, sync_playwright() as playwright:
        env = {"FEEDBACK_URI": feedback, "HF_HUB_OFFLINE": "1"}
        env.update({"LLM_BASE_URL": "", "HF_TOKEN": "", "HF_TOKEN_SECRET_ID": ""})
        for name, launcher in [("launch_app.py", True), ("streamlit run", False)]:
            times = cold_starts(playwright, env, args.starts, launcher=launcher, photo=photos[0])
            print_cold_starts(name, times)
        with streamlit_server(env) as (url, process, _):
            shown, model_ms = uploads(playwright, url, photos[: args.uploads])
            print(
                f"upload -> dish shown       p50 {percentile(shown, 50) * 1000:7.0f} ms"
                f"  p95 {percentile(shown, 95) * 1000:7.0f} ms  (n={len(shown)})"
            )
            print(f"  of which model predict   p50 {percentile(model_ms, 50):7.0f} ms")
            rss = concurrent_sessions(playwright, url, process.pid, photos[: args.sessions])
            print(
                f"server RSS, {args.sessions} sessions     {rss / MB:7.0f} MB"
                f"  (target <= 1024 MB; peak {peak_rss(process.pid) / MB:.0f} MB)"
            )
    with open("/proc/loadavg") as loadavg:
        print(f"load average at the end: {loadavg.read().split()[0]} on {_cpus()} CPUs")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--starts", type=int, default=3, help="cold starts to time (default 3)")
    parser.add_argument("--uploads", type=int, default=10, help="photos to upload (default 10)")
    parser.add_argument(
        "--sessions", type=int, default=5, help="concurrent sessions for RSS (default 5)"
    )
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
