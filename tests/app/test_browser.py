"""The real thing: ``python launch_app.py`` on a loopback port, driven by Debian's Chromium on a
desktop (1280×900) and a phone (390×844) viewport.

The photo is a Food-101 one when ``../shared`` is there, else scikit-image's coffee (nothing
to download). Each server runs a copy of the
shipped model whose card forces one verdict (the real weights still rank the real top 3), so
every run walks the same branch: "Not sure" → pick a dish → chat about it; "No dish found" →
"It is food" → pick; the camera (Chromium's fake one); and the newest answer in view. The
API's ``/docs`` renders with every request beyond the API refused. The
desktop screenshot goes to the test's temporary folder; ``UPDATE_SCREENSHOT=1`` refreshes
``docs/screenshot.png``.
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
    api_server,
    chromium_path,
    launch_chromium,
    open_app,
    streamlit_server,
    upload_photo,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}
CAMERA_STREAMING = "() => [...document.querySelectorAll('video')].some(v => v.readyState >= 2)"
LABELS = json.loads((DEFAULT_MODEL_DIR / "labels.json").read_text())


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    return path


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory, dish_jpeg: bytes) -> Path:
    path = tmp_path_factory.mktemp("photos") / "dish.jpg"
    path.write_bytes(dish_jpeg)
    return path


def heading(page) -> str:
    return page.locator("main h3").first.inner_text()


def save_screenshot(page, path: Path) -> None:
    """The whole page, not only the viewport: Streamlit scrolls inside its own container."""
    height = page.evaluate("() => document.querySelector('main').scrollHeight")
    page.set_viewport_size({"width": 1280, "height": min(max(height + 40, 900), 4000)})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))


def pick_and_chat(page, expect) -> str:
    """Pick the second of the top 3, then ask through the suggestions; returns the dish."""
    second = page.locator(".st-key-pick_1 button")
    dish = second.inner_text().split(" · ")[0]
    second.click()
    expect(page.locator("main h3").first).to_have_text(dish, timeout=30_000)
    expect(page.get_by_text(f"Saved: {dish}. Thank you")).to_be_visible()
    for key, words in [("ingredients", f"Typical ingredients of {dish}"), ("calories", "kcal")]:
        page.locator(f".st-key-suggest_{key} button").click()
        answer = page.locator('[data-testid="stChatMessage"]').filter(has_text=words).last
        expect(answer).to_be_visible(timeout=30_000)
        expect(answer).to_be_in_viewport(timeout=10_000)  # the newest answer is in view
    # The chat is about the picked dish, follow-ups included.
    page.get_by_test_id("stChatInputTextArea").fill("What wine goes with it?")
    page.keyboard.press("Enter")
    answer = page.locator('[data-testid="stChatMessage"]').filter(has_text="Drinks that go")
    expect(answer.last).to_contain_text(f"Drinks that go well with {dish}", timeout=30_000)
    expect(answer.last).to_be_in_viewport(timeout=10_000)
    return dish


def take_camera_shot(page, expect, *, width: int, height: int) -> None:
    """The camera tab: one shot, the verdict visible without scrolling, the shot shown once."""
    page.get_by_role("tab", name="Take a photo").click()
    page.locator(".st-key-camera_on label").click()
    page.wait_for_function(CAMERA_STREAMING, timeout=60_000)
    page.get_by_role("button", name="Take Photo").click()
    expect(page.get_by_text(RESULT_CAPTION)).to_be_visible(timeout=60_000)
    page.mouse.move(width / 2, height / 2)
    page.mouse.wheel(0, -10_000)  # back to the top of the page, as a person would scroll
    page.wait_for_timeout(500)
    expect(page.locator("main h3").first).to_be_in_viewport()
    assert page.locator('main [data-testid="stImage"]').count() == 0, f"{width}x{height}"


def test_pick_chat_and_camera_on_desktop_and_phone(
    chromium, forced_model, photo_file, feedback_dir, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    env = {"FEEDBACK_URI": str(feedback_dir), "MODEL_URI": forced_model("unsure")}
    with (
        streamlit_server(env, log_path=tmp_path / "app.log") as (url, _, _),
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright, fake_camera=True)
        try:
            picked = []
            for name, (width, height) in VIEWPORTS.items():
                page = open_app(browser, url, width=width, height=height, phone=name == "phone")
                upload_photo(page, photo_file)
                assert heading(page).endswith("?")
                expect(page.get_by_text("Which dish is it?")).to_be_visible()
                picked.append(pick_and_chat(page, expect))
                if name == "desktop":
                    save_screenshot(page, tmp_path / "screenshot.png")
                page.close()
                page = open_app(browser, url, width=width, height=height, phone=name == "phone")
                take_camera_shot(page, expect, width=width, height=height)
                page.close()
        finally:
            browser.close()

    log = (tmp_path / "app.log").read_text()
    assert "Traceback" not in log
    assert log.count("model loaded") == 1
    assert log.index("model loaded") < log.index("server started")  # before it answers
    assert log.count("prediction source=upload") == 2
    assert log.count("prediction source=camera") == 2
    records = [json.loads(path.read_text()) for path in feedback_dir.rglob("*.json")]
    label_of = {name: label for label, name in LABELS.items()}
    assert sorted(r["correction"] for r in records) == sorted(label_of[name] for name in picked)
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "screenshot.png", ROOT / "docs" / "screenshot.png")


def test_refused_photo_it_is_food_then_pick(chromium, forced_model, photo_file, feedback_dir):
    from playwright.sync_api import expect, sync_playwright

    env = {"FEEDBACK_URI": str(feedback_dir), "MODEL_URI": forced_model("not_food")}
    with streamlit_server(env) as (url, _, _), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for name, (width, height) in VIEWPORTS.items():
                page = open_app(browser, url, width=width, height=height, phone=name == "phone")
                upload_photo(page, photo_file)
                assert heading(page) == "No dish found"
                expect(page.get_by_text("If it is, its best guess was")).to_be_visible()
                page.locator(".st-key-claim_food button").click()
                first = page.locator(".st-key-pick_0 button")
                dish = first.inner_text().split(" · ")[0]
                first.click()
                expect(page.locator("main h3").first).to_have_text(dish, timeout=30_000)
                expect(page.get_by_text(f"Ask about {dish}")).to_be_visible()
                page.close()
        finally:
            browser.close()
    records = [json.loads(path.read_text()) for path in feedback_dir.rglob("*.json")]
    assert [(r["predicted_label"], r["correct"]) for r in records] == [("not_food", False)] * 2


def test_api_docs_render_with_the_network_off(chromium) -> None:
    from playwright.sync_api import expect, sync_playwright

    env = {"API_WORKER_PROCESSES": "false"}
    with api_server(env) as (url, _, _), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context()
            refused: list[str] = []

            def offline(route) -> None:  # anything but this API fails, as with no internet
                if route.request.url.startswith(url):
                    route.continue_()
                else:
                    refused.append(route.request.url)
                    route.abort("internetdisconnected")

            context.route("**/*", offline)
            page = context.new_page()
            page.goto(f"{url}/docs")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("DishLens API")
            expect(page.get_by_text("/v1/classify").first).to_be_visible()
            context.close()
        finally:
            browser.close()
    assert refused == []  # nothing even tried to leave
