"""DishLens: name the dish in a food photo, then chat about it.

Run with ``python launch_app.py`` (loads the model, then serves this page) or ``streamlit run
app.py``. This page only wires widgets: ``intake`` turns links and photos into images,
``classifier`` names the dish, ``llm_client`` answers and formats the dish facts,
``dishlens.feedback`` stores picks, and ``app_support`` holds the photo state and the wording.
"""

from __future__ import annotations

import logging

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

import llm_client
from app_support import (
    BACKEND_HELP,
    OTHER_DISH_NAME,
    PhotoState,
    classify_photo,
    guide,
    heading,
    logger,
    model_summary,
    save_pick,
    saved_message,
    status_line,
)
from classifier import Classifier, shared_classifier
from dishlens.errors import DishLensError
from dishlens.feedback import NOT_FOOD, OTHER_DISH, FeedbackError, FeedbackStore
from dishlens.settings import Settings, load_settings
from llm_client.facts import PORTIONS, dish_card, display_name, fact_sheet, portion_grams
from llm_client.offline import TOPICS

CHAT_HEIGHT = 420
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@st.cache_resource(show_spinner=False)
def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)


@st.cache_resource(show_spinner="Loading the dish model (only after a restart)…")
def get_classifier(model_uri: str | None, _settings: Settings) -> Classifier:
    return shared_classifier(model_uri, _settings)


@st.cache_resource(show_spinner=False)
def get_feedback_store(uri: str) -> FeedbackStore:
    return FeedbackStore(uri)


@st.cache_resource(show_spinner=False)
def get_chat(settings: Settings) -> llm_client.Chat:
    return llm_client.make_chat(settings)


def fail(error: DishLensError) -> None:
    st.error(str(error), icon=":material/error:")
    st.stop()


def choose_source(source: str) -> None:
    st.session_state.source = source


def current_photo(settings: Settings, model: Classifier) -> PhotoState | None:
    """The photo from the input that changed last, decoded and classified once per photo."""
    source = st.session_state.get("source")
    value = st.session_state.get(source) if source else None
    if not value:
        return None
    key = (source, value if isinstance(value, str) else value.file_id)
    photo: PhotoState | None = st.session_state.get("photo")
    if photo is None or photo.key != key:
        for widget in ("portion", "portion_g", "pick_other"):
            st.session_state.pop(widget, None)
        with st.spinner("Looking at your photo…"):
            photo = st.session_state.photo = classify_photo(key, value, settings, model)
    return photo


def pick(photo: PhotoState, label: str | None) -> None:
    if label is not None:
        photo.pick(label)


def pick_button(photo: PhotoState, label: str, text: str, key: str) -> None:
    st.button(text, key=key, on_click=pick, args=(photo, label))


def save(settings: Settings, photo: PhotoState, model: Classifier) -> None:
    """Store the person's pick; on failure warn and keep everything else on the page."""
    try:
        save_pick(get_feedback_store(settings.feedback_uri), photo, model)
    except FeedbackError as error:
        logger.warning("feedback not stored error=%r", error.__cause__)
        st.warning(str(error), icon=":material/cloud_off:")


def dish_buttons(photo: PhotoState, model: Classifier, *, skip_best: bool = False) -> None:
    """The top 3 as buttons, and every dish the model knows in a searchable list."""
    ranked = list(enumerate(photo.prediction.top))[1 if skip_best else 0 :]
    with st.container(horizontal=True):
        for rank, score in ranked:
            text = f"{score.display_name} · {score.probability:.0%}"
            pick_button(photo, score.label, text, f"pick_{rank}")
    names = {**model.labels, OTHER_DISH: OTHER_DISH_NAME}
    st.selectbox(
        "Something else",
        list(names),
        index=None,
        key="pick_other",
        format_func=names.get,
        placeholder=f"Search the {len(model.labels)} dishes",
        on_change=lambda: pick(photo, st.session_state.pick_other),
    )


def show_verdict(photo: PhotoState, model: Classifier) -> None:
    prediction = photo.prediction
    st.subheader(heading(photo, model.labels), anchor=False)
    st.markdown(status_line(prediction))
    if photo.saved is not None and photo.saved == photo.picked:
        st.success(saved_message(photo.saved, model.labels), icon=":material/favorite:")
    if prediction.status == "not_food" and not photo.is_food:
        food, no_dish, _ = st.columns([1, 1, 1])
        if food.button(":material/restaurant: It is food", key="claim_food", width="stretch"):
            photo.is_food = True
            st.rerun()
        with no_dish:
            pick_button(photo, NOT_FOOD, "Right, no dish here", "confirm_not_food")
    elif photo.offers_pick:
        st.markdown("**Which dish is it?** Pick one; the facts and the chat follow your pick.")
        dish_buttons(photo, model)
    else:
        for score in prediction.top:
            st.progress(score.probability, text=f"{score.display_name} · {score.probability:.0%}")
        best = prediction.best
        yes, other = st.columns([1, 1])
        with yes:
            pick_button(
                photo, best.label, f":material/thumb_up: Yes, it is {best.display_name}", "pick_0"
            )
        with other.popover(f"Not {best.display_name}?", width="stretch"):
            dish_buttons(photo, model, skip_best=True)
    st.caption(f"The model answered in {prediction.latency_ms:.0f} ms · {model.name}")


def show_result(photo: PhotoState, model: Classifier) -> None:
    if photo.source == "camera":  # the camera widget already shows the shot
        show_verdict(photo, model)
        return
    image_column, verdict_column = st.columns([2, 3], gap="medium")
    image_column.image(photo.image, width="stretch")
    with verdict_column:
        show_verdict(photo, model)


def show_facts(label: str) -> float | None:
    """The facts panel with a portion control; returns the portion in grams (None: typical)."""
    card = dish_card(label)
    if card is None:
        return None
    grams = {name: portion_grams(card, name) for name in PORTIONS}
    with st.expander(f"About {card['display_name']}", expanded=False):
        size_column, grams_column = st.columns([3, 2])
        size = size_column.segmented_control(
            "Portion",
            list(PORTIONS),
            default="regular",
            key="portion",
            format_func=lambda name: f"{name.capitalize()} · {grams[name]:.0f} g",
        )
        exact = grams_column.number_input("Or grams", 1, 2000, value=None, step=10, key="portion_g")
        portion_g = float(exact) if exact else grams.get(size or "regular")
        for line in fact_sheet(card, portion_g=portion_g):
            st.markdown(line)
        st.caption(
            "Typical values; recipes and portions vary. Check labels if you have an allergy."
        )
    return portion_g


def stream_reply(
    chat: llm_client.Chat, question: str, photo: PhotoState, dish: llm_client.DishContext
) -> str:
    """Stream the answer into the page; a failure becomes a warning, never a traceback."""
    try:
        return st.write_stream(chat.stream_answer(question, dish, list(photo.messages)))
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


def show_chat(chat: llm_client.Chat, photo: PhotoState, portion_g: float | None) -> None:
    """History in a scrolling box that keeps the newest answer in view, with the suggestions and
    the chat input right below it. The input sits in the page, not pinned to the window: a
    pinned one makes Streamlit keep the page scrolled to the bottom, which would push the
    verdict out of view."""
    name = display_name(photo.dish)
    st.subheader(f"Ask about {name}", anchor=False)
    log = st.container(height=CHAT_HEIGHT if photo.messages else "content", key="chat_log")
    for message in photo.messages:
        log.chat_message(message["role"]).markdown(message["content"])
    topics_shown = photo.needs_topics(offline=chat.is_offline)
    if topics_shown:
        st.caption("I can answer these offline:")
    asked = None
    with st.container(horizontal=True, key="suggestions"):
        for key, title, question in TOPICS if topics_shown else TOPICS[:4]:
            if st.button(title, key=f"suggest_{key}"):
                asked = question
    with st.container():
        typed = st.chat_input(f"Ask about {name}…", key="question", max_chars=1000)
    if question := typed or asked:
        with log:
            st.chat_message("user").markdown(question)
            with st.chat_message("assistant"):
                reply = stream_reply(chat, question, photo, photo.dish_context(portion_g))
        if reply:  # a question that got no answer at all is not kept
            photo.messages += [
                {"role": "user", "content": question},
                {"role": "assistant", "content": reply},
            ]
        if photo.needs_topics(offline=chat.is_offline) != topics_shown:
            st.rerun()
    st.caption(f"Answers come from **{chat.backend_name}**.")


def show_sidebar(model: Classifier, chat: llm_client.Chat) -> None:
    with st.sidebar:
        st.header("The model", anchor=False)
        st.markdown(model_summary(model))
        st.caption(model.card.get("licence", ""))
        st.header("Chat", anchor=False)
        st.markdown(f"Answers come from **{chat.backend_name}**.")
        st.caption(BACKEND_HELP)


@st.dialog("How DishLens works", width="large")
def show_guide(model: Classifier) -> None:
    st.markdown(guide(model.card, len(model.labels)))


def photo_inputs() -> DeltaGenerator:
    """The three inputs; returns where a camera shot's verdict goes (beside the camera)."""
    link_tab, upload_tab, camera_tab = st.tabs(
        [
            ":material/link: Paste a link",
            ":material/upload: Upload a photo",
            ":material/photo_camera: Take a photo",
        ],
        key="input_tab",  # a stable identity: the open tab survives reruns
    )
    link_tab.text_input(
        "Link to a photo",
        key="link",
        placeholder="https://example.com/dish.jpg",
        on_change=choose_source,
        args=("link",),
    )
    upload_tab.file_uploader(
        "A photo of a dish",
        key="upload",
        on_change=choose_source,
        args=("upload",),
        type=["jpg", "jpeg", "png", "webp", "gif", "bmp", "heic", "heif"],
    )
    with camera_tab:
        if not st.toggle("Use my camera", key="camera_on"):
            return st.container()
        # The verdict comes first, so that a phone (one column) shows it above the shot.
        verdict, shot = st.columns([1, 1], gap="medium")
        shot.camera_input(
            "Take a photo of your dish", key="camera", on_change=choose_source, args=("camera",)
        )
        return verdict


st.set_page_config(page_title="DishLens", page_icon="🍽️", layout="centered")
# The title goes first so that it shows while a cold process loads the model.
st.title(":material/restaurant: DishLens", anchor=False)
intro, help_column = st.columns([5, 1], vertical_alignment="center")
intro.markdown(
    "Show DishLens a photo of a dish: it names the dish, then answers your questions about it."
)
try:
    settings = load_settings()
    setup_logging(settings.log_level)
    model, chat = get_classifier(settings.model_uri, settings), get_chat(settings)
except DishLensError as error:
    fail(error)
if help_column.button(":material/help: Guide", key="guide", type="tertiary"):
    show_guide(model)
show_sidebar(model, chat)

camera_slot = photo_inputs()
photo = current_photo(settings, model)
if photo is None:
    st.info("Paste a link, upload a photo or take one to begin.", icon=":material/arrow_upward:")
    st.stop()
if photo.error is not None:
    fail(photo.error)
save(settings, photo, model)
with camera_slot if photo.source == "camera" else st.container():
    show_result(photo, model)
if photo.dish is None:
    if photo.picked == OTHER_DISH:
        st.info(
            "DishLens does not know this dish yet; thank you for telling it.",
            icon=":material/info:",
        )
    st.stop()
show_chat(chat, photo, show_facts(photo.dish))
