"""The page, driven through ``streamlit.testing.v1.AppTest`` with the real packages.

The classifier is the real one (default model, or a copy whose card forces a verdict), intake
fetches from a loopback image server, chat runs offline or against a loopback OpenAI-compatible
SSE server, and feedback lands in a temporary folder or a moto S3 server. Nothing is stubbed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from streamlit.testing.v1 import AppTest

from classifier.predictor import DEFAULT_MODEL_DIR
from tests.app.conftest import LLM_API_KEY
from tests.support.chat_server import ChatServer, Reply

Run = Callable[[], AppTest]
LABELS = json.loads((DEFAULT_MODEL_DIR / "labels.json").read_text())
RESULT_CAPTION = "The model answered in"


# ---------------------------------------------------------------------------------------------
# HELPERS


def upload(at: AppTest, data: bytes, name: str = "dish.jpg", mime: str = "image/jpeg") -> AppTest:
    at.file_uploader(key="upload").upload(name, data, mime)
    return at.run()


def paste_link(at: AppTest, url: str) -> AppTest:
    at.text_input(key="link").input(url)
    return at.run()


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input(key="question").set_value(question)
    return at.run()


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def page_text(at: AppTest) -> str:
    parts = [*texts(at.markdown), *texts(at.caption), *texts(at.subheader), *texts(at.title)]
    parts += [*texts(at.error), *texts(at.warning), *texts(at.info), *texts(at.success)]
    return "\n".join(str(part) for part in parts)


def chat_log(at: AppTest) -> list[tuple[str, str]]:
    return [(message.name, "\n".join(texts(message.markdown))) for message in at.chat_message]


def result_heading(at: AppTest) -> str:
    return at.subheader[0].value


def assert_clean(at: AppTest) -> None:
    """No uncaught exception, and nothing that looks like a traceback on the page."""
    assert not at.exception
    assert "Traceback" not in page_text(at)


def stored_records(folder: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(folder.rglob("*.json"))]


@pytest.fixture
def confident(monkeypatch: pytest.MonkeyPatch, forced_model) -> None:
    monkeypatch.setenv("MODEL_URI", forced_model("confident"))


# ---------------------------------------------------------------------------------------------
# THE PAGE BEFORE A PHOTO


def test_first_visit_shows_title_inputs_and_model_card(run_app: Run) -> None:
    at = run_app()
    assert_clean(at)
    assert "DishLens" in at.title[0].value
    assert [tab.label for tab in at.tabs] == [
        ":material/link: Paste a link",
        ":material/upload: Upload a photo",
        ":material/photo_camera: Take a photo",
    ]
    assert "to begin" in at.info[0].value
    sidebar = "\n".join(texts(at.sidebar.markdown)) + "\n".join(texts(at.sidebar.caption))
    assert "efficientnet-lite0" in sidebar
    assert f"Dishes it knows: {len(LABELS)}" in sidebar
    assert "Input: centre square shrunk to 64×64, then" in sidebar  # the default 101-dish model
    assert "Validation accuracy" in sidebar
    assert "offline answers" in sidebar
    assert "HF_TOKEN" in sidebar and "LLM_BASE_URL" in sidebar
    assert not at.chat_input


def test_readme_opens_from_the_sidebar(run_app: Run) -> None:
    at = run_app()
    at.button(key="readme").click().run()
    assert_clean(at)
    assert any(text.startswith("# DishLens") for text in texts(at.markdown))


def test_invalid_setting_is_a_friendly_error(run_app: Run, monkeypatch) -> None:
    monkeypatch.setenv("MAX_IMAGE_MB", "lots")
    at = run_app()
    assert_clean(at)
    assert "MAX_IMAGE_MB" in at.error[0].value


# ---------------------------------------------------------------------------------------------
# PHOTO IN, DISH OUT


def test_link_flow_names_the_dish(run_app: Run, image_server: str, confident, monkeypatch) -> None:
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    at = paste_link(run_app(), f"{image_server}/dish.jpg")
    assert_clean(at)
    assert result_heading(at) in LABELS.values()
    assert f"this looks like {result_heading(at)}" in page_text(at)
    bars = at.get("progress")
    assert len(bars) == 3
    assert any(RESULT_CAPTION in caption for caption in texts(at.caption))
    assert len(at.image) == 1
    assert at.chat_input  # chat is offered about a dish


def test_upload_flow_names_the_dish_and_offers_chat(run_app: Run, dish_jpeg: bytes) -> None:
    at = upload(run_app(), dish_jpeg)
    assert_clean(at)
    heading = result_heading(at).rstrip("?")
    assert heading in LABELS.values() or heading == "No dish found"
    assert any(RESULT_CAPTION in caption for caption in texts(at.caption))
    assert {button.key for button in at.button} >= {"feedback_yes", "feedback_no"}


def test_camera_flow_uses_the_same_path(run_app: Run, dish_jpeg: bytes, confident) -> None:
    at = run_app()
    at.toggle(key="camera_on").set_value(True).run()
    at.camera_input(key="camera").upload("shot.jpg", dish_jpeg)
    at.run()
    assert_clean(at)
    assert result_heading(at) in LABELS.values()


def test_unsure_flow_names_two_candidates(run_app: Run, dish_jpeg, forced_model, monkeypatch):
    monkeypatch.setenv("MODEL_URI", forced_model("unsure"))
    at = upload(run_app(), dish_jpeg)
    assert_clean(at)
    bars = [bar.proto.text for bar in at.get("progress")]
    first, second = (text.split(" · ")[0] for text in bars[:2])
    assert result_heading(at) == f"{first}?"
    assert f"Not sure** — it might be {first} or {second}." in page_text(at)
    at = ask(at, "What are the ingredients?")
    answer = chat_log(at)[-1][1]
    assert "not sure" in answer.lower()  # the offline answer carries the doubt along


def test_not_food_flow_offers_no_chat(run_app: Run, not_food_jpeg, forced_model, monkeypatch):
    monkeypatch.setenv("MODEL_URI", forced_model("not_food"))
    at = upload(run_app(), not_food_jpeg, name="astronaut.jpg")
    assert_clean(at)
    assert result_heading(at) == "No dish found"
    assert "This does not look like food." in page_text(at)
    assert not at.get("progress")
    assert not at.chat_input
    assert not [button for button in at.button if button.key.startswith("suggest_")]
    assert "Is it really not food?" in texts(at.subheader)


def test_real_model_flags_a_non_food_photo(run_app: Run, not_food_jpeg: bytes) -> None:
    at = upload(run_app(), not_food_jpeg, name="astronaut.jpg")
    assert_clean(at)
    assert result_heading(at) == "No dish found" or result_heading(at).endswith("?")


def test_new_photo_clears_the_chat(run_app: Run, dish_jpeg, not_food_jpeg, confident) -> None:
    at = upload(run_app(), dish_jpeg)
    at = ask(at, "What are the ingredients?")
    assert len(chat_log(at)) == 2
    at = upload(at, not_food_jpeg, name="other.jpg")
    assert_clean(at)
    assert chat_log(at) == []


# ---------------------------------------------------------------------------------------------
# ERRORS FROM INTAKE


def test_private_address_link_is_refused(run_app: Run, image_server: str) -> None:
    at = paste_link(run_app(), f"{image_server}/dish.jpg")  # ALLOW_PRIVATE_URLS is off
    assert_clean(at)
    assert at.error[0].value == (
        "That link points to a private network address, which DishLens does not fetch."
    )
    assert not at.subheader
    assert not at.chat_input


def test_cloud_metadata_link_is_refused(run_app: Run) -> None:
    at = paste_link(run_app(), "http://169.254.169.254/latest/meta-data/iam/")
    assert_clean(at)
    assert "private network address" in at.error[0].value


def test_upload_that_is_not_an_image(run_app: Run) -> None:
    at = upload(run_app(), b"just some notes, not a photo", name="notes.jpg")
    assert_clean(at)
    assert len(at.error) == 1
    assert "photo" in at.error[0].value
    assert not at.subheader


def test_link_to_html_is_not_an_image(run_app: Run, image_server: str, monkeypatch) -> None:
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    at = paste_link(run_app(), f"{image_server}/page.jpg")
    assert_clean(at)
    assert len(at.error) == 1
    assert not at.subheader


def test_a_good_photo_after_an_error_recovers(run_app: Run, dish_jpeg, confident) -> None:
    at = upload(run_app(), b"not a photo", name="notes.jpg")
    at = upload(at, dish_jpeg)
    assert_clean(at)
    assert not at.error
    assert result_heading(at) in LABELS.values()


# ---------------------------------------------------------------------------------------------
# CHAT


def test_offline_chat_suggestions_stream_and_keep_history(run_app: Run, dish_jpeg, confident):
    at = upload(run_app(), dish_jpeg)
    dish = result_heading(at)
    at.button(key="suggest_calories").click().run()
    assert_clean(at)
    (user, question), (assistant, answer) = chat_log(at)
    assert (user, assistant) == ("user", "assistant")
    assert question == "How many calories are in a serving?"
    assert "kcal" in answer and "approximation" in answer
    at = ask(at, "Is it vegan?")
    log = chat_log(at)
    assert [role for role, _ in log] == ["user", "assistant"] * 2
    assert log[2] == ("user", "Is it vegan?")
    assert "vegan" in log[3][1]
    assert "Answers come from **offline answers**." in texts(at.caption)
    assert f"Ask about {dish}" in texts(at.subheader)


def test_dish_facts_are_labelled_approximate(run_app: Run, dish_jpeg, confident) -> None:
    at = upload(run_app(), dish_jpeg)
    facts = at.expander[0]
    assert facts.label.startswith("About ")
    body = "\n".join(texts(facts.markdown))
    assert "(approximate)" in body and "kcal" in body


def test_chat_with_an_openai_compatible_server(
    run_app, dish_jpeg, confident, chat_server: ChatServer
) -> None:
    chat_server.script(
        Reply(text=["Bibimbap ", "is ", "a rice ", "bowl."]),
        Reply(text=["Rice, ", "vegetables ", "and an egg."]),
    )
    at = upload(run_app(), dish_jpeg)
    dish = result_heading(at)
    at = ask(at, "What is in it?")
    assert_clean(at)
    assert chat_log(at)[-1] == ("assistant", "Bibimbap is a rice bowl.")
    host = chat_server.url.split("//")[1].split("/")[0]
    assert f"Answers come from **custom endpoint ({host})**." in texts(at.caption)

    at = ask(at, "And what goes on top?")
    assert chat_log(at)[-1] == ("assistant", "Rice, vegetables and an egg.")
    messages = chat_server.received[-1].body["messages"]
    assert messages[0]["role"] == "system" and dish in messages[0]["content"]
    turns = [(m["role"], m["content"]) for m in messages[1:]]
    assert turns == [
        ("user", "What is in it?"),
        ("assistant", "Bibimbap is a rice bowl."),
        ("user", "And what goes on top?"),
    ]
    assert LLM_API_KEY not in page_text(at)


def test_broken_stream_keeps_the_partial_answer(run_app, dish_jpeg, confident, chat_server):
    chat_server.script(Reply(text=["Rice ", "and ", "vege"], cut_after=2))
    at = upload(run_app(), dish_jpeg)
    at = ask(at, "What is in it?")
    assert_clean(at)
    assert chat_log(at)[-1] == ("assistant", "Rice and")  # Markdown drops the trailing space
    assert "interrupted" in at.warning[0].value


def test_llm_503_shows_a_warning_and_the_offline_answer(run_app, dish_jpeg, confident, chat_server):
    busy = Reply(status=503, headers={"Retry-After": "0"}, body={"error": "loading"})
    chat_server.script(busy, busy)
    at = upload(run_app(), dish_jpeg)
    at.button(key="suggest_ingredients").click().run()
    assert_clean(at)
    assert len(chat_server.received) == 2  # one retry (LLM_MAX_RETRIES=1), then the fallback
    assert "unavailable" in at.warning[0].value
    role, answer = chat_log(at)[-1]
    assert role == "assistant" and "ingredients" in answer.lower()
    assert "offline answer" in page_text(at)


# ---------------------------------------------------------------------------------------------
# FEEDBACK


def test_feedback_yes_is_stored_in_a_local_folder(run_app, dish_jpeg, confident, feedback_dir):
    at = upload(run_app(), dish_jpeg)
    at.button(key="feedback_yes").click().run()
    assert_clean(at)
    assert "Thanks" in at.success[0].value
    (record,) = stored_records(feedback_dir)
    assert record["correct"] is True and record["correction"] is None
    assert record["source"] == "upload"
    assert LABELS[record["predicted_label"]] == result_heading(at)
    assert (
        record["model_version"]
        == json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())["version"]
    )
    assert (feedback_dir / record["created"][:10] / record["image"]).is_file()


def test_feedback_no_with_a_correction(run_app, dish_jpeg, forced_model, monkeypatch, feedback_dir):
    monkeypatch.setenv("MODEL_URI", forced_model("not_food"))
    at = upload(run_app(), dish_jpeg)
    at.button(key="feedback_no").click().run()
    choice = at.selectbox(key="feedback_choice")
    assert "not_food" not in choice.options  # the model already said "not food"
    choice.select("baklava").run()
    at.button(key="feedback_send").click().run()
    assert_clean(at)
    (record,) = stored_records(feedback_dir)
    assert record["predicted_label"] == "not_food"
    assert record["status"] == "not_food"
    assert (record["correct"], record["correction"]) == (False, "baklava")


def test_feedback_to_s3(run_app, dish_jpeg, confident, aws, monkeypatch) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="app-feedback")
    monkeypatch.setenv("FEEDBACK_URI", "s3://app-feedback/dishlens/")
    at = upload(run_app(), dish_jpeg)
    at.button(key="feedback_yes").click().run()
    assert_clean(at)
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket="app-feedback")["Contents"])
    assert [key.rsplit(".", 1)[1] for key in keys] == ["jpg", "json"]
    assert all(key.startswith("dishlens/") for key in keys)


def test_failing_store_warns_and_keeps_the_page(
    run_app, dish_jpeg, confident, tmp_path, monkeypatch
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the feedback folder should be")
    monkeypatch.setenv("FEEDBACK_URI", str(blocker))
    at = upload(run_app(), dish_jpeg)
    at = ask(at, "What are the ingredients?")
    heading = result_heading(at)
    at.button(key="feedback_yes").click().run()
    assert_clean(at)
    assert "could not be saved" in at.warning[0].value
    assert str(blocker) not in page_text(at)
    assert result_heading(at) == heading
    assert len(chat_log(at)) == 2
    assert at.button(key="feedback_yes")  # they can try again


# ---------------------------------------------------------------------------------------------
# OPERATIONS


def test_one_log_line_per_prediction(run_app, dish_jpeg, confident, chat_server, caplog) -> None:
    caplog.set_level(logging.INFO)
    at = upload(run_app(), dish_jpeg)
    at = ask(at, "What is in it?")
    at = ask(at, "Is it spicy?")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("prediction ")]
    assert len(lines) == 1  # reruns for chat do not classify again
    (line,) = lines
    assert "status=confident" in line and "label=" in line and "latency_ms=" in line
    assert "\n" not in line
    everything = "\n".join(record.getMessage() for record in caplog.records)
    assert LLM_API_KEY not in everything


def test_model_and_chat_are_created_once_per_process(
    run_app, dish_jpeg, confident, caplog, monkeypatch
):
    import streamlit as st

    import llm_client

    made = []
    real_make_chat = llm_client.make_chat
    monkeypatch.setattr(llm_client, "make_chat", lambda *a: made.append(1) or real_make_chat(*a))
    st.cache_resource.clear()
    caplog.set_level(logging.INFO)
    for _ in range(2):  # two sessions, several reruns each
        at = upload(run_app(), dish_jpeg)
        at = ask(at, "What are the ingredients?")
        assert_clean(at)
    loads = [r for r in caplog.records if r.getMessage().startswith("model loaded")]
    assert len(loads) == 1
    assert len(made) == 1
