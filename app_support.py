"""What the page keeps and says, apart from the widgets: the typed state of one photo, the words
for each verdict, the feedback record of a pick, and the in-app guide.

``app.py`` wires widgets to these and to the packages; nothing here imports Streamlit, so the
wording and the state rules are plain functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

import intake
from classifier import Classifier, Prediction
from dishlens.errors import DishLensError
from dishlens.feedback import NOT_FOOD, OTHER_DISH, FeedbackRecord, FeedbackStore
from dishlens.settings import Settings
from llm_client import DishContext
from llm_client.offline import understands

OTHER_DISH_NAME = "A dish not in this list"
PHOTO_SIDE = 1024
BACKEND_HELP = (
    "Set `HF_TOKEN` to chat with Llama through Hugging Face, or `LLM_BASE_URL` for your own "
    "OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp); with neither, DishLens answers "
    "offline from its dish facts. Restart the app after changing them."
)
logger = logging.getLogger("dishlens.app")


@dataclass
class PhotoState:
    """One photo the person gave the page, and what they said about it.

    ``key`` tells photos apart (the input and the value or file id). ``picked`` is the label
    the person chose (a model label, :data:`OTHER_DISH` or :data:`NOT_FOOD`), ``saved`` the
    pick last stored as feedback, ``is_food`` whether they answered "It is food" to a refused
    photo, ``messages`` the chat about the picked dish.
    """

    key: tuple[str, str]
    source: str
    image: Image.Image | None = None
    prediction: Prediction | None = None
    error: DishLensError | None = None
    picked: str | None = None
    saved: str | None = None
    is_food: bool = False
    messages: list[dict[str, str]] = field(default_factory=list)

    def pick(self, label: str) -> None:
        """Make ``label`` the dish the page is about; a new dish starts a new chat."""
        if label != self.dish:
            self.messages = []
        self.picked = label

    @property
    def dish(self) -> str | None:
        """The label that facts and chat are about: the pick, else the model's guess, else
        ``None`` (a refused photo nobody has picked a dish for, or a dish not in the list)."""
        if self.picked is not None:
            return None if self.picked in (OTHER_DISH, NOT_FOOD) else self.picked
        if self.prediction is None or self.prediction.status == "not_food":
            return None
        return self.prediction.best.label

    @property
    def offers_pick(self) -> bool:
        """Whether the top 3 are shown as buttons first (unsure, or refused but "It is food")."""
        assert self.prediction is not None
        status = self.prediction.status
        return status == "unsure" or (status == "not_food" and self.is_food)

    def dish_context(self, portion_g: float | None) -> DishContext:
        """What the chat needs to know about the dish the page is about."""
        assert self.prediction is not None and self.dish is not None
        others = [s.label for s in self.prediction.top if s.label != self.dish]
        if self.picked is not None:
            return DishContext(
                self.dish, 1.0, alternatives=others, portion_g=portion_g, confirmed=True
            )
        best = self.prediction.best
        return DishContext(
            best.label,
            best.probability,
            status=self.prediction.status,
            alternatives=others,
            portion_g=portion_g,
        )

    def needs_topics(self, *, offline: bool) -> bool:
        """Offline, after a question it could not match, every topic it answers is offered."""
        questions = [m["content"] for m in self.messages if m["role"] == "user"]
        return offline and bool(questions) and not understands(questions[-1])


def classify_photo(
    key: tuple[str, str], value: Any, settings: Settings, model: Classifier
) -> PhotoState:
    """A new :class:`PhotoState` for a link (text) or an uploaded file: decoded by ``intake``
    (its refusal lands in ``error``), shrunk to :data:`PHOTO_SIDE` and classified."""
    source = key[0]
    photo = PhotoState(key, source)
    try:
        if isinstance(value, str):
            image = intake.image_from_url(value.strip(), settings=settings)
        else:
            image = intake.image_from_bytes(
                value.getvalue(), filename=value.name, settings=settings
            )
    except intake.IntakeError as error:
        logger.info("photo refused source=%s reason=%s", source, type(error).__name__)
        photo.error = error
        return photo
    image.thumbnail((PHOTO_SIDE, PHOTO_SIDE))
    photo.image, photo.prediction = image, model.predict(image)
    best = photo.prediction.best
    logger.info(
        "prediction source=%s status=%s label=%s probability=%.3f latency_ms=%.0f",
        source, photo.prediction.status, best.label, best.probability,
        photo.prediction.latency_ms,
    )  # fmt: skip
    return photo


def save_pick(store: FeedbackStore, photo: PhotoState, model: Classifier) -> None:
    """Store the person's pick unless it is already stored.

    Raises:
        FeedbackError: the store could not be written; the pick stays unsaved.
    """
    if photo.picked is None or photo.picked == photo.saved:
        return
    key = store.save(photo.image, feedback_record(photo, photo.picked, model))
    logger.info("feedback stored key=%s label=%s", key, photo.picked)
    photo.saved = photo.picked


def heading(photo: PhotoState, names: dict[str, str]) -> str:
    """The title over the verdict: the picked or guessed dish, or "No dish found"."""
    assert photo.prediction is not None
    if photo.picked is not None and photo.picked != NOT_FOOD:
        return names.get(photo.picked, OTHER_DISH_NAME)
    if photo.prediction.status == "not_food" or photo.picked == NOT_FOOD:
        return "No dish found"
    return photo.prediction.best.display_name + ("?" if photo.prediction.status == "unsure" else "")


def status_line(prediction: Prediction) -> str:
    """One line of Streamlit Markdown saying how sure the model is, without double negatives."""
    best = prediction.best
    if prediction.status == "not_food":
        return (
            ":orange[:material/no_food: **This does not look like food to DishLens.** "
            f"If it is, its best guess was {best.display_name}.]"
        )
    if prediction.status == "unsure":
        return ":orange[:material/help: **Not sure** — which one is it?]"
    return f":green[:material/check_circle: **Confident** — this looks like {best.display_name}.]"


def saved_message(label: str, names: dict[str, str]) -> str:
    """What the page says once a pick is stored: ``"Saved: Pancakes. Thank you"``."""
    if label == NOT_FOOD:
        return "Saved: no dish in this photo. Thank you"
    return f"Saved: {names.get(label, OTHER_DISH_NAME)}. Thank you"


def feedback_record(photo: PhotoState, label: str, model: Classifier) -> FeedbackRecord:
    """The feedback record of the person's pick: a confirmation when it is the model's verdict
    (the top dish, or "no dish" for a refused photo), otherwise a correction."""
    prediction = photo.prediction
    assert prediction is not None
    predicted = NOT_FOOD if prediction.status == "not_food" else prediction.best.label
    correct = label == predicted
    return FeedbackRecord(
        predicted_label=predicted,
        predicted_probability=prediction.best.probability,
        status=prediction.status,
        correct=correct,
        correction=None if correct else label,
        alternatives=[(score.label, score.probability) for score in prediction.top],
        model_name=str(model.card.get("name", "")),
        model_version=str(model.card.get("version", "")),
        source=photo.source,
    )


def model_summary(model: Classifier) -> str:
    """The sidebar's Markdown about the loaded model."""
    card, metrics = model.card, model.card.get("metrics", {})
    training, preprocessing = card.get("training", {}), card.get("preprocessing", {})
    size, shrink = card.get("input_size", "?"), preprocessing.get("shrink_size")
    model_input = f"{size} px centre crop"
    if shrink:
        model_input = f"centre square shrunk to {shrink}×{shrink}, then {size} px"
    return (
        f"**{card.get('name', 'Model')}** · version {card.get('version', '?')}\n\n"
        f"- Architecture: {card.get('architecture', '?')}\n"
        f"- Dishes it knows: {len(model.labels)}\n"
        f"- Input: {model_input}\n"
        f"- Validation accuracy: top-1 {metrics.get('top1', 0):.0%}, "
        f"top-3 {metrics.get('top3', 0):.0%} ({metrics.get('images', '?')} photos)\n"
        f"- Trained on: {trained_on(training)}"
        f"{promotion_line(card.get('promotion'))}"
    )


def trained_on(training: dict[str, Any]) -> str:
    """Each training source by its last path part (no bucket or server paths), with photos."""
    sources = training.get("sources") or [
        {"source": training.get("data", "?"), "images": training.get("images", "?")}
    ]
    parts = []
    for source in sources:
        name = str(source.get("source", "?")).rstrip("/").rsplit("/", 1)[-1]
        kind = "people's answers in " if source.get("kind") == "feedback" else ""
        weight = source.get("weight", 1.0)
        weighted = f", each drawn {weight:g}× as often" if weight != 1.0 else ""
        images = source.get("images", "?")
        count = f"{images:,}" if isinstance(images, int) else images
        parts.append(f"{kind}{name} ({count} photos{weighted})")
    return " + ".join(parts)


def promotion_line(promotion: dict[str, Any] | None) -> str:
    """How the model passed the registry's gate, when it was promoted through it."""
    if not promotion:
        return ""
    against = promotion.get("against_production") or {}
    beaten = f" against {against['production']}" if against.get("production") else ""
    return (
        f"\n- Promoted {str(promotion.get('compared', ''))[:10]}{beaten}: right on "
        f"{promotion.get('accuracy', 0):.0%} of {promotion.get('photos', '?')} held-out photos, "
        f"{promotion.get('not_food_share', 0):.0%} of non-food refused"
    )


def guide(card: dict[str, Any], dishes: int) -> str:
    """The in-app guide for people (not developers), with the model's measured numbers."""
    metrics = card.get("metrics", {})
    # Cards from 2026-12 on measure the statuses on real photos; older ones on the val split.
    real_photos = card.get("calibration", {}).get("real_photos", {}).get("check")
    shares = real_photos or metrics.get("flagged_share", {})
    precision = card.get("calibration", {}).get("options", {}).get("confident_precision")
    confident = f" about {precision * 10:.0f} times in 10," if precision else ""
    return f"""\
**What DishLens knows.** {dishes} dishes (the Food-101 list: from apple pie to waffles). \
It names the dish in your photo, then answers questions about it: ingredients, allergens and \
swaps, calories for your portion, how to make it, keeping and reheating, drinks and sides.

**How good is it?** On {metrics.get("images", "several thousand")} test photos its first guess \
was right {metrics.get("top1", 0):.0%} of the time, and the right dish was among its three \
guesses {metrics.get("top3", 0):.0%} of the time.

- **Confident**: its guess is right{confident} by design. About \
{shares.get("confident", 0):.0%} of real food photos get this verdict. Not right? Use "Not …?".
- **Not sure**: the right dish is often among its three guesses — pick it with one click, \
or choose "Something else". About {shares.get("unsure", 0):.0%} of real food photos.
- **No dish found**: the photo does not look like any dish it knows. If it is food, press \
"It is food" to see its guesses.

**What is saved when you pick a dish.** The photo (re-encoded, without location or camera \
data), what the model said and the dish you picked — nothing about you. They go to the \
feedback store of whoever runs this DishLens (a folder or a private cloud bucket) to train the \
next model. Questions you ask are not saved.

**Nutrition and allergens are typical values.** Recipes and portions vary; if you have an \
allergy, check the actual ingredients with whoever made the dish.
"""
