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
from classifier.shared import forget_shared_classifiers
from llm_client.facts import dish_card, portion_grams
from llm_client.offline import TOPICS as OFFLINE_TOPICS
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
    assert "Trained on: food101-64 (55,550 photos)" in sidebar  # no path, the folder name
    assert "offline answers" in sidebar
    # Operator words (environment variables) appear in the sidebar only.
    assert "HF_TOKEN" in sidebar and "LLM_BASE_URL" in sidebar
    assert "HF_TOKEN" not in "\n".join(texts(at.main.markdown))
    assert not at.chat_input


def test_the_guide_explains_verdicts_accuracy_and_what_is_saved(run_app: Run) -> None:
    at = run_app()
    at.button(key="guide").click().run()
    assert_clean(at)
    card = json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())
    text = "\n".join(texts(at.markdown))
    assert f"{len(LABELS)} dishes" in text
    assert f"right {card['metrics']['top1']:.0%} of the time" in text
    assert f"three guesses {card['metrics']['top3']:.0%}" in text
    for words in ("**Confident**", "**Not sure**", "**No dish found**", "typical values"):
        assert words in text
    assert "without location or camera data" in text
    assert "# DishLens" not in text  # the developer README is not shown to people


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
    # Confident: "Yes, it is X" and, less prominently, "Not X?" with the other two and a list.
    assert at.button(key="pick_0").label.endswith(f"Yes, it is {result_heading(at)}")
    assert {"pick_1", "pick_2"} <= {button.key for button in at.button}
    assert at.selectbox(key="pick_other")


def test_upload_flow_names_the_dish(run_app: Run, dish_jpeg: bytes) -> None:
    at = upload(run_app(), dish_jpeg)
    assert_clean(at)
    heading = result_heading(at).rstrip("?")
    assert heading in LABELS.values() or heading == "No dish found"
    assert any(RESULT_CAPTION in caption for caption in texts(at.caption))
    assert "pick_0" in {button.key for button in at.button} or at.button(key="claim_food")


def test_camera_flow_shows_the_shot_once(run_app: Run, dish_jpeg: bytes, confident) -> None:
    at = run_app()
    at.toggle(key="camera_on").set_value(True).run()
    at.camera_input(key="camera").upload("shot.jpg", dish_jpeg)
    at.run()
    assert_clean(at)
    assert result_heading(at) in LABELS.values()
    assert not at.image  # the camera widget shows the shot; the result does not repeat it
    assert at.chat_input


def test_unsure_offers_the_top_three_and_a_pick_leads_the_chat(
    run_app: Run, dish_jpeg, forced_model, monkeypatch, feedback_dir
):
    monkeypatch.setenv("MODEL_URI", forced_model("unsure"))
    at = upload(run_app(), dish_jpeg)
    assert_clean(at)
    top = at.session_state.photo.prediction.top
    assert result_heading(at) == f"{top[0].display_name}?"
    assert "Not sure** — which one is it?" in page_text(at)
    labels = [at.button(key=f"pick_{rank}").label for rank in range(3)]
    assert [label.split(" · ")[0] for label in labels] == [s.display_name for s in top]
    at = ask(at, "What are the ingredients?")
    assert "not sure" in chat_log(at)[-1][1].lower()  # before a pick, the doubt is carried along

    at.button(key="pick_1").click().run()
    assert_clean(at)
    second = top[1]
    assert result_heading(at) == second.display_name
    assert f"Ask about {second.display_name}" in texts(at.subheader)
    assert at.success[0].value == f"Saved: {second.display_name}. Thank you"
    assert chat_log(at) == []  # a new dish starts a new chat
    at = ask(at, "What are the ingredients?")
    answer = chat_log(at)[-1][1]
    assert f"Typical ingredients of {second.display_name}" in answer
    assert "not sure" not in answer.lower()  # the person picked it: no doubt left
    assert at.expander[0].label == f"About {second.display_name}"
    (record,) = stored_records(feedback_dir)
    assert record["status"] == "unsure" and record["predicted_label"] == top[0].label
    assert (record["correct"], record["correction"]) == (False, second.label)


def test_picking_the_top_guess_is_a_confirmation(
    run_app, dish_jpeg, forced_model, monkeypatch, feedback_dir
):
    monkeypatch.setenv("MODEL_URI", forced_model("unsure"))
    at = upload(run_app(), dish_jpeg)
    at.button(key="pick_0").click().run()
    assert_clean(at)
    at.button(key="pick_0").click().run()  # the same pick again is not stored twice
    (record,) = stored_records(feedback_dir)
    assert (record["correct"], record["correction"]) == (True, None)


def test_something_else_searches_every_dish(run_app, dish_jpeg, confident, feedback_dir) -> None:
    at = upload(run_app(), dish_jpeg)
    choice = at.selectbox(key="pick_other")
    assert len(choice.options) == len(LABELS) + 1  # every dish, and "a dish not in this list"
    choice.select("baklava").run()
    assert_clean(at)
    assert result_heading(at) == "Baklava"
    assert "Ask about Baklava" in texts(at.subheader)
    assert stored_records(feedback_dir)[0]["correction"] == "baklava"
    at.selectbox(key="pick_other").select("other_dish").run()
    assert_clean(at)
    assert "does not know this dish yet" in at.info[0].value
    assert not at.chat_input
    corrections = sorted(record["correction"] for record in stored_records(feedback_dir))
    assert corrections == ["baklava", "other_dish"]


def test_not_food_says_what_the_model_would_guess(
    run_app, not_food_jpeg, forced_model, monkeypatch
):
    monkeypatch.setenv("MODEL_URI", forced_model("not_food"))
    at = upload(run_app(), not_food_jpeg, name="astronaut.jpg")
    assert_clean(at)
    best = at.session_state.photo.prediction.best
    assert result_heading(at) == "No dish found"
    assert "This does not look like food to DishLens." in page_text(at)
    assert f"its best guess was {best.display_name}" in page_text(at)
    assert "really not" not in page_text(at)  # no double negatives
    assert not at.chat_input
    assert not [button for button in at.button if button.key.startswith("suggest_")]

    at.button(key="claim_food").click().run()
    assert_clean(at)
    assert at.button(key="pick_0").label.startswith(best.display_name)
    at.button(key="pick_2").click().run()
    third = at.session_state.photo.prediction.top[2]
    assert result_heading(at) == third.display_name
    assert at.chat_input and f"Ask about {third.display_name}" in texts(at.subheader)


def test_not_food_can_be_confirmed(run_app, not_food_jpeg, forced_model, monkeypatch, feedback_dir):
    monkeypatch.setenv("MODEL_URI", forced_model("not_food"))
    at = upload(run_app(), not_food_jpeg, name="astronaut.jpg")
    at.button(key="confirm_not_food").click().run()
    assert_clean(at)
    assert at.success[0].value == "Saved: no dish in this photo. Thank you"
    (record,) = stored_records(feedback_dir)
    assert (record["predicted_label"], record["correct"]) == ("not_food", True)


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
    assert question == "How many calories are in a portion?"
    assert "kcal" in answer and "approximation" in answer
    at = ask(at, "Is it vegan?")
    log = chat_log(at)
    assert [role for role, _ in log] == ["user", "assistant"] * 2
    assert log[2] == ("user", "Is it vegan?")
    assert "vegan" in log[3][1]
    assert "Answers come from **offline answers**." in texts(at.caption)
    assert f"Ask about {dish}" in texts(at.subheader)


def test_offline_chat_answers_the_common_questions(run_app: Run, dish_jpeg, confident) -> None:
    at = upload(run_app(), dish_jpeg)
    for question, words in [
        ("What wine goes with it?", "Drinks that go well with"),
        ("How long does it keep in the fridge?", "When in doubt, throw it out."),
        ("Is it spicy?", "Typical recipes for"),
        ("What is it served with?", "is usually served with"),
    ]:
        at = ask(at, question)
        assert words in chat_log(at)[-1][1], question
    assert_clean(at)


def test_an_unknown_question_offers_the_topics_as_buttons(run_app: Run, dish_jpeg, confident):
    at = upload(run_app(), dish_jpeg)
    assert {b.key for b in at.button if b.key.startswith("suggest_")} == {
        "suggest_ingredients", "suggest_allergens", "suggest_calories", "suggest_recipe",
    }  # fmt: skip
    at = ask(at, "Who won the match last night?")
    assert_clean(at)
    answer = chat_log(at)[-1][1]
    assert answer.startswith("I can't answer that one offline.")
    assert "HF_TOKEN" not in answer and "LLM_BASE_URL" not in answer
    keys = {b.key for b in at.button if b.key.startswith("suggest_")}
    assert keys == {f"suggest_{key}" for key, _title, _question in OFFLINE_TOPICS}
    at.button(key="suggest_drinks").click().run()
    assert chat_log(at)[-1][1].startswith("Drinks that go well with")
    assert "suggest_drinks" not in {b.key for b in at.button}  # back to the four


def test_a_follow_up_uses_the_conversation(run_app: Run, dish_jpeg, confident) -> None:
    at = upload(run_app(), dish_jpeg)
    at = ask(at, "Does it contain gluten?")
    at = ask(at, "Can I make it without that?")
    assert_clean(at)
    answer = chat_log(at)[-1][1]
    assert "without gluten" in answer or "have no gluten among their usual ingredients" in answer
    assert "How " not in answer  # not the whole recipe again


def test_the_portion_scales_facts_and_answers(run_app: Run, dish_jpeg, confident) -> None:
    at = upload(run_app(), dish_jpeg)
    card = dish_card(at.session_state.photo.dish)
    serving = card["serving"]
    body = "\n".join(texts(at.expander[0].markdown))
    assert f"about {serving['grams']:g} g: roughly {serving['kcal']:g} kcal" in body
    assert "(approximate)" not in body and "Typical values" in texts(at.expander[0].caption)[0]

    at.segmented_control(key="portion").set_value("large").run()
    large = portion_grams(card, "large")
    kcal = round(serving["kcal"] * large / serving["grams"])
    assert f"about {large:g} g: roughly {kcal:g} kcal" in "\n".join(texts(at.expander[0].markdown))
    at = ask(at, "How many calories?")
    assert f"For a portion of about {large:g} g: roughly {kcal:g} kcal" in chat_log(at)[-1][1]

    at.number_input(key="portion_g").set_value(50).run()
    kcal = round(serving["kcal"] * 50 / serving["grams"])
    assert f"about 50 g: roughly {kcal:g} kcal" in "\n".join(texts(at.expander[0].markdown))
    assert_clean(at)


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

    at.segmented_control(key="portion").set_value("small").run()
    at = ask(at, "And what goes on top?")
    assert chat_log(at)[-1] == ("assistant", "Rice, vegetables and an egg.")
    messages = chat_server.received[-1].body["messages"]
    assert messages[0]["role"] == "system" and dish in messages[0]["content"]
    card = dish_card(at.session_state.photo.dish)
    assert (
        f"The person's portion: about {portion_grams(card, 'small'):g} g" in messages[0]["content"]
    )
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


def test_yes_is_stored_in_a_local_folder_and_says_what(run_app, dish_jpeg, confident, feedback_dir):
    at = upload(run_app(), dish_jpeg)
    at = ask(at, "What are the ingredients?")
    at.button(key="pick_0").click().run()
    assert_clean(at)
    assert at.success[0].value == f"Saved: {result_heading(at)}. Thank you"
    assert len(chat_log(at)) == 2  # confirming the dish keeps the chat
    (record,) = stored_records(feedback_dir)
    assert record["correct"] is True and record["correction"] is None
    assert record["source"] == "upload"
    assert LABELS[record["predicted_label"]] == result_heading(at)
    assert (
        record["model_version"]
        == json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())["version"]
    )
    assert (feedback_dir / record["created"][:10] / record["image"]).is_file()


def test_feedback_to_s3(run_app, dish_jpeg, confident, aws, monkeypatch) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="app-feedback")
    monkeypatch.setenv("FEEDBACK_URI", "s3://app-feedback/dishlens/")
    at = upload(run_app(), dish_jpeg)
    at.button(key="pick_0").click().run()
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
    at.button(key="pick_0").click().run()
    assert_clean(at)
    assert "could not be saved" in at.warning[0].value
    assert not at.success
    assert str(blocker) not in page_text(at)
    assert result_heading(at) == heading
    assert len(chat_log(at)) == 2
    at.button(key="pick_0").click().run()  # they can try again
    assert "could not be saved" in at.warning[0].value


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
    forget_shared_classifiers()
    caplog.set_level(logging.INFO)
    for _ in range(2):  # two sessions, several reruns each
        at = upload(run_app(), dish_jpeg)
        at = ask(at, "What are the ingredients?")
        assert_clean(at)
    loads = [r for r in caplog.records if r.getMessage().startswith("model loaded")]
    assert len(loads) == 1
    assert len(made) == 1
