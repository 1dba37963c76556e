"""The real thing: ``streamlit run app.py`` on a loopback port, driven by Debian's Chromium.

Upload a Food-101 photo, see the dish, click a suggested question, see the answer stream in
(offline chat), say whether the dish is right, and take a screenshot. The screenshot goes to
the test's temporary folder; set ``UPDATE_SCREENSHOT=1`` to refresh ``docs/screenshot.png``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from classifier.predictor import DEFAULT_MODEL_DIR
from tests.app.browser import (
    RESULT_CAPTION,
    ROOT,
    chromium_path,
    launch_chromium,
    open_app,
    streamlit_server,
    upload_photo,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LABELS = json.loads((DEFAULT_MODEL_DIR / "labels.json").read_text())


def save_screenshot(page, path: Path) -> None:
    """The whole page, not only the viewport: Streamlit scrolls inside its own container."""
    height = page.evaluate("() => document.querySelector('main').scrollHeight")
    page.set_viewport_size({"width": 1280, "height": min(max(height + 40, 900), 4000)})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))


@pytest.fixture
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    return path


def test_upload_see_dish_ask_and_give_feedback(chromium, food_mnist, feedback_dir, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    photo = sorted((food_mnist / "images" / "bibimbap").glob("*.jpg"))[0]
    with (
        streamlit_server({"FEEDBACK_URI": str(feedback_dir)}, log_path=tmp_path / "app.log") as (
            url,
            _,
            _,
        ),
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        try:
            page = open_app(browser, url)
            upload_photo(page, photo)
            heading = page.locator("main h3").first.inner_text()
            assert heading.rstrip("?") in [*LABELS.values(), "No dish found"]
            expect(page.get_by_text(RESULT_CAPTION)).to_be_visible()

            if heading != "No dish found":
                page.locator(".st-key-suggest_calories button").click()
                answer = page.locator('[data-testid="stChatMessage"]').filter(has_text="kcal")
                expect(answer).to_be_visible(timeout=30_000)
                expect(answer).to_contain_text("approximation")

            page.locator(".st-key-feedback_yes button").click()
            expect(page.get_by_text("Thanks!")).to_be_visible(timeout=30_000)
            save_screenshot(page, tmp_path / "screenshot.png")
        finally:
            browser.close()

    log = (tmp_path / "app.log").read_text()
    assert "Traceback" not in log
    assert log.count("prediction source=upload") == 1
    (record,) = [json.loads(path.read_text()) for path in feedback_dir.rglob("*.json")]
    assert record["correct"] is True and record["source"] == "upload"
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "screenshot.png", ROOT / "docs" / "screenshot.png")
