"""DishLens: name the dish in a food photo, then chat about it.

Run with ``streamlit run app.py``. This page only wires widgets to the packages: ``intake``
turns links and photos into images, ``classifier`` names the dish, ``llm_client`` answers
questions and ``dishlens.feedback`` stores "Right dish?" answers.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import streamlit as st

import intake
import llm_client
from classifier import Classifier, Prediction, load_classifier
from dishlens.errors import DishLensError
from dishlens.feedback import NOT_FOOD, OTHER_DISH, FeedbackError, FeedbackRecord, FeedbackStore
from dishlens.settings import Settings, load_settings

README = Path(__file__).resolve().parent / "README.md"
PHOTO_SIDE = 1024
SUGGESTIONS = [  # (widget key, button, question)
    ("ingredients", ":material/grocery: Ingredients", "What are the ingredients?"),
    ("allergens", ":material/warning: Allergens", "Which allergens does it contain?"),
    ("calories", ":material/nutrition: Calories", "How many calories are in a serving?"),
    ("recipe", ":material/skillet: How to make it", "How do I make it at home?"),
]
BACKEND_HELP = (
    "Set `HF_TOKEN` to chat with Llama through Hugging Face, or `LLM_BASE_URL` for your own "
    "OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp); with neither, DishLens answers "
    "offline from its dish facts. Restart the app after changing them."
)
logger = logging.getLogger("dishlens.app")


@st.cache_resource(show_spinner=False)
def setup_logging(level: str) -> None:
    """One line per event on stderr, beside Streamlit's own log lines."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


@st.cache_resource(show_spinner="Loading the dish model…")
def get_classifier(model_uri: str | None, _settings: Settings) -> Classifier:
    return load_classifier(model_uri, settings=_settings)


@st.cache_resource(show_spinner=False)
def get_chat(settings: Settings) -> llm_client.Chat:
    return llm_client.make_chat(settings)


@st.cache_resource(show_spinner=False)
def get_feedback_store(uri: str) -> FeedbackStore:
    return FeedbackStore(uri)


def fail(error: DishLensError) -> None:
    """Show a package error as a friendly message and end this run of the page."""
    st.error(str(error), icon=":material/error:")
    st.stop()


def choose_source(source: str) -> None:
    st.session_state.source = source


def chosen_photo(settings: Settings, model: Classifier) -> dict | None:
    """The photo from the input that changed last, decoded and classified once per photo.

    The result lives in ``st.session_state.photo``; a new photo clears the chat and feedback.
    """
    source = st.session_state.get("source")
    value = st.session_state.get(source) if source else None
    if not value:
        return None
    key = (source, value if isinstance(value, str) else value.file_id)
    if st.session_state.get("photo", {}).get("key") == key:
        return st.session_state.photo
    st.session_state.messages = []
    st.session_state.feedback = None
    photo = {"key": key, "source": source}
    try:
        with st.spinner("Looking at your photo…"):
            if source == "link":
                image = intake.image_from_url(value.strip(), settings=settings)
            else:
                image = intake.image_from_bytes(
                    value.getvalue(), filename=value.name, settings=settings
                )
            image.thumbnail((PHOTO_SIDE, PHOTO_SIDE))
            prediction = model.predict(image)
    except intake.IntakeError as error:
        logger.info("photo refused source=%s reason=%s", source, type(error).__name__)
        photo["error"] = error
    else:
        logger.info(
            "prediction source=%s status=%s label=%s probability=%.3f latency_ms=%.0f",
            source,
            prediction.status,
            prediction.best.label,
            prediction.best.probability,
            prediction.latency_ms,
        )
        photo.update(image=image, prediction=prediction)
    st.session_state.photo = photo
    return photo


def heading(prediction: Prediction) -> str:
    if prediction.status == "not_food":
        return "No dish found"
    suffix = "?" if prediction.status == "unsure" else ""
    return prediction.best.display_name + suffix


def status_line(prediction: Prediction) -> str:
    best, *others = prediction.top
    if prediction.status == "not_food":
        return ":orange[:material/no_food: **This does not look like food.**]"
    if prediction.status == "unsure":
        names = " or ".join(score.display_name for score in [best, *others][:2])
        return f":orange[:material/help: **Not sure** — it might be {names}.]"
    return f":green[:material/check_circle: **Confident** — this looks like {best.display_name}.]"


def show_result(photo: dict, model: Classifier) -> None:
    prediction: Prediction = photo["prediction"]
    image_column, result_column = st.columns([2, 3], gap="medium")
    image_column.image(photo["image"], width="stretch")
    with result_column:
        st.subheader(heading(prediction), anchor=False)
        st.markdown(status_line(prediction))
        if prediction.status != "not_food":
            for score in prediction.top:
                st.progress(
                    score.probability, text=f"{score.display_name} · {score.probability:.0%}"
                )
        st.caption(f"The model answered in {prediction.latency_ms:.0f} ms · {model.name}")


def show_dish_facts(label: str) -> None:
    try:
        card = llm_client.dish_card(label)
    except llm_client.ChatError as error:
        logger.warning("dish facts unavailable error=%s", type(error).__name__)
        return
    if card is None:
        return
    serving, diet = card["serving"], card["diet"]
    with st.expander(f"About {card['display_name']}"):
        st.markdown(f"{card['description']} *{card['cuisine']}.*")
        st.markdown(f"**Typical ingredients:** {', '.join(card['ingredients'])}")
        allergens = ", ".join(card["allergens"]) or "none of the 14 common allergens"
        st.markdown(f"**Common allergens:** {allergens}")
        flags = [
            name.replace("_", "-") for name in ("vegetarian", "vegan", "gluten_free") if diet[name]
        ]
        st.markdown(f"**Diet:** {', '.join(flags) or 'not vegetarian, vegan or gluten-free'}")
        st.markdown(
            f"**Per typical {serving['grams']:.0f} g serving (approximate):** "
            f"~{serving['kcal']:.0f} kcal · protein ~{serving['protein_g']:.0f} g · "
            f"carbohydrate ~{serving['carbohydrate_g']:.0f} g · fat ~{serving['fat_g']:.0f} g"
        )
        st.caption(
            "Typical values; recipes and portions vary. Check labels if you have an allergy."
        )


def dish_context(prediction: Prediction) -> llm_client.DishContext:
    best, *others = prediction.top
    return llm_client.DishContext(
        best.label,
        best.probability,
        status=prediction.status,
        alternatives=[score.label for score in others],
    )


def stream_reply(chat: llm_client.Chat, question: str, prediction: Prediction) -> str:
    """Stream the answer into the page; a failure becomes a warning, never a traceback."""
    history = list(st.session_state.messages)
    try:
        return st.write_stream(chat.stream_answer(question, dish_context(prediction), history))
    except llm_client.IncompleteAnswerError as error:
        logger.warning(
            "chat answer incomplete backend=%s reason=%s", chat.backend_name, error.reason
        )
        st.warning(str(error), icon=":material/content_cut:")
        return error.partial_text
    except llm_client.ChatError as error:
        logger.warning("chat failed backend=%s error=%s", chat.backend_name, type(error).__name__)
        st.warning(str(error), icon=":material/cloud_off:")
        if error.offline_answer:
            st.caption("Meanwhile, here is the offline answer from DishLens's dish facts:")
            st.markdown(error.offline_answer)
            return error.offline_answer
        return ""


def show_chat(chat: llm_client.Chat, prediction: Prediction) -> None:
    st.subheader(f"Ask about {prediction.best.display_name}", anchor=False)
    asked = None
    columns = st.columns(len(SUGGESTIONS))
    for column, (key, title, question) in zip(columns, SUGGESTIONS, strict=True):
        if column.button(title, key=f"suggest_{key}", width="stretch"):
            asked = question
    for message in st.session_state.messages:
        st.chat_message(message["role"]).markdown(message["content"])
    if question := st.chat_input("Ask about this dish…", key="question", max_chars=1000) or asked:
        st.chat_message("user").markdown(question)
        with st.chat_message("assistant"):
            reply = stream_reply(chat, question, prediction)
        if reply:  # a question that got no answer at all is not kept
            st.session_state.messages += [
                {"role": "user", "content": question},
                {"role": "assistant", "content": reply},
            ]
    st.caption(f"Answers come from **{chat.backend_name}**.")


def send_feedback(
    settings: Settings, photo: dict, answer: tuple[bool, str | None], model: Classifier
) -> bool:
    """Store the answer; on failure show a warning and keep everything else on the page."""
    prediction: Prediction = photo["prediction"]
    record = FeedbackRecord(
        predicted_label=NOT_FOOD if prediction.status == "not_food" else prediction.best.label,
        predicted_probability=prediction.best.probability,
        status=prediction.status,
        correct=answer[0],
        correction=answer[1],
        alternatives=[(score.label, score.probability) for score in prediction.top],
        model_name=model.card.get("name", ""),
        model_version=str(model.card.get("version", "")),
        source=photo["source"],
    )
    try:
        key = get_feedback_store(settings.feedback_uri).save(photo["image"], record)
    except FeedbackError as error:
        logger.warning("feedback not stored error=%r", error.__cause__)
        st.warning(str(error), icon=":material/cloud_off:")
        return False
    logger.info("feedback stored key=%s correct=%s", key, answer[0])
    st.session_state.feedback = photo["key"]
    return True


def show_feedback(settings: Settings, photo: dict, model: Classifier) -> None:
    not_food = photo["prediction"].status == "not_food"
    st.subheader("Is it really not food?" if not_food else "Right dish?", anchor=False)
    if st.session_state.get("feedback") == photo["key"]:
        st.success("Thanks! Your answer helps the next model learn.", icon=":material/favorite:")
        return
    yes_column, no_column, _ = st.columns([1, 1, 3])
    answer = None  # (correct, correction) once the person has answered
    if yes_column.button(":material/thumb_up: Yes", key="feedback_yes", width="stretch"):
        answer = (True, None)
    if no_column.button(":material/thumb_down: No", key="feedback_no", width="stretch"):
        st.session_state.feedback_open = photo["key"]
    if st.session_state.get("feedback_open") == photo["key"]:
        options = [*model.labels, OTHER_DISH] + ([] if not_food else [NOT_FOOD])
        names = {**model.labels, OTHER_DISH: "A dish not in this list", NOT_FOOD: "Not food"}
        correction = st.selectbox(
            "What is it?", options, index=None, key="feedback_choice", format_func=names.get,
            placeholder="Pick the right dish",
        )  # fmt: skip
        if st.button("Send", key="feedback_send", disabled=correction is None, type="primary"):
            answer = (False, correction)
    if answer and send_feedback(settings, photo, answer, model):
        st.rerun()


def show_sidebar(model: Classifier, chat: llm_client.Chat) -> None:
    card, metrics = model.card, model.card.get("metrics", {})
    training, preprocessing = card.get("training", {}), card.get("preprocessing", {})
    size, shrink = card.get("input_size", "?"), preprocessing.get("shrink_size")
    model_input = f"{size} px centre crop"
    if shrink:
        model_input = f"centre square shrunk to {shrink}×{shrink}, then {size} px"
    with st.sidebar:
        st.header("The model", anchor=False)
        st.markdown(
            f"**{card.get('name', 'Model')}** · version {card.get('version', '?')}\n\n"
            f"- Architecture: {card.get('architecture', '?')}\n"
            f"- Dishes it knows: {len(model.labels)}\n"
            f"- Input: {model_input}\n"
            f"- Validation accuracy: top-1 {metrics.get('top1', 0):.0%}, "
            f"top-3 {metrics.get('top3', 0):.0%} ({metrics.get('images', '?')} photos)\n"
            f"- Trained on: {Path(str(training.get('data', '?'))).name}, "
            f"{training.get('images', '?')} photos ({training.get('split', 'train')} split)"
        )
        st.caption(card.get("licence", ""))
        st.header("Chat", anchor=False)
        st.markdown(f"Answers come from **{chat.backend_name}**.")
        st.caption(BACKEND_HELP)
        if README.is_file() and st.button(":material/menu_book: Read the README", key="readme"):
            show_readme()


@st.dialog("DishLens README", width="large")
def show_readme() -> None:
    # Relative image links (the screenshot) do not resolve inside the page; leave them out.
    st.markdown(re.sub(r"!\[[^\]]*\]\([^)]*\)\n?", "", README.read_text(encoding="utf-8")))


st.set_page_config(page_title="DishLens", page_icon="🍽️", layout="centered")
# The title goes first so that it shows while a cold process loads the model.
st.title(":material/restaurant: DishLens", anchor=False)
st.markdown(
    "Show DishLens a photo of a dish: it names the dish, then answers your questions about "
    "it — ingredients, allergens, calories and how to make it."
)
try:
    settings = load_settings()
    setup_logging(settings.log_level)
    model, chat = get_classifier(settings.model_uri, settings), get_chat(settings)
except DishLensError as error:
    fail(error)
show_sidebar(model, chat)

link_tab, upload_tab, camera_tab = st.tabs(
    [
        ":material/link: Paste a link",
        ":material/upload: Upload a photo",
        ":material/photo_camera: Take a photo",
    ],
    key="input_tab",  # a stable identity: the open tab survives reruns
)
with link_tab:
    st.text_input(
        "Link to a photo",
        key="link",
        placeholder="https://example.com/dish.jpg",
        on_change=choose_source,
        args=("link",),
    )
with upload_tab:
    st.file_uploader(
        "A photo of a dish",
        key="upload",
        on_change=choose_source,
        args=("upload",),
        type=["jpg", "jpeg", "png", "webp", "gif", "bmp", "heic", "heif"],
    )
with camera_tab:
    if st.toggle("Use my camera", key="camera_on"):
        st.camera_input(
            "Take a photo of your dish", key="camera", on_change=choose_source, args=("camera",)
        )

photo = chosen_photo(settings, model)
if photo is None:
    st.info("Paste a link, upload a photo or take one to begin.", icon=":material/arrow_upward:")
    st.stop()
if "error" in photo:
    fail(photo["error"])

show_result(photo, model)
prediction = photo["prediction"]
if prediction.status != "not_food":
    show_dish_facts(prediction.best.label)
    show_chat(chat, prediction)
show_feedback(settings, photo, model)
