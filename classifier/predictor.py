"""The in-process classifier that the app, the API and the CLIs call."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from PIL import Image

from classifier.artifact import fetch_s3_model, load_artifact, verify_artifact
from classifier.food_gate import FoodGate, FoodScore, GateSignals
from classifier.metrics import MahalanobisScorer
from classifier.model import FoodNet, fuse_for_inference
from classifier.presets import EvalPreset
from classifier.trunk import inference_dtype
from dishlens.settings import Settings, get_settings
from intake.budget import check_shape

Status = Literal["confident", "unsure", "not_food"]
BUNDLED_MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL_DIR = BUNDLED_MODELS / "food101-lite0"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DishScore:
    label: str
    display_name: str
    probability: float


@dataclass(frozen=True)
class Prediction:
    """What the classifier says about one photo.

    ``status`` is ``"confident"``, ``"unsure"`` (the top probability is below the threshold
    chosen on validation data) or ``"not_food"`` (the food score is below its threshold; see
    :func:`status_masks`). ``top`` is sorted from most to least likely, and is filled on
    ``not_food`` too, so that a person who says "it is food" can pick from it.
    ``food_score`` (0-1, higher is more like food) is the not-food detector's score for the
    photo (``None`` when the model has no food gate); ``ood_score`` is the feature distance to
    the nearest dish, published for inspection (it no longer decides the status).
    """

    status: Status
    top: list[DishScore]
    ood_score: float
    food_score: float | None = None
    latency_ms: float = field(default=0.0, compare=False)

    @property
    def best(self) -> DishScore:
        return self.top[0]


@dataclass(frozen=True)
class ModelInfo:
    """What describes a model without running it: its card and its labels (label -> display
    name, in output order). For a process that only serves the description, such as an API
    whose model runs in worker processes."""

    card: dict[str, Any]
    labels: dict[str, str]

    @property
    def name(self) -> str:
        return model_name(self.card)


def model_name(card: dict[str, Any]) -> str:
    return f"{card['name']}@{card['version']}"


class Classifier:
    """A loaded model; ``predict`` is safe to call from several threads at once."""

    def __init__(
        self,
        model: FoodNet,
        scorer: MahalanobisScorer,
        labels: dict[str, str],
        card: dict,
        *,
        precision: str = "auto",
    ) -> None:
        self.dtype = inference_dtype(precision)
        self._model = fuse_for_inference(model, self.dtype)
        self._scorer = scorer
        gate = card.get("food_gate")
        self._gate = FoodGate.from_card(gate, self.dtype) if gate else None
        score = gate.get("score") if gate else None
        self._food_score = FoodScore.from_card(score) if score else None
        self._labels = list(labels)
        self._display = labels
        self._preset = EvalPreset.from_card(card)
        self._temperature = float(card["temperature"])
        self._thresholds = dict(card["thresholds"])
        self._gate_threads = ThreadPoolExecutor(
            max_workers=os.cpu_count() or 1,
            thread_name_prefix="dishlens-food-gate",
            initializer=torch.set_num_threads,
            initargs=(1,),
        )
        self.card: dict[str, Any] = card

    @property
    def labels(self) -> dict[str, str]:
        """Label -> display name, in the model's output order."""
        return dict(self._display)

    @property
    def name(self) -> str:
        return model_name(self.card)

    def predict(self, image: Image.Image, top_k: int = 3) -> Prediction:
        return self.predict_batch([image], top_k=top_k)[0]

    def predict_batch(self, images: list[Image.Image], top_k: int = 3) -> list[Prediction]:
        """Predictions for ``images``, in order.

        Raises:
            ImageShapeError: an image is too long, too narrow or too large a side to resize
                (the same limits intake applies to photo bytes).
        """
        for image in images:
            check_shape(*image.size)
        started = time.perf_counter()
        probs, ood, food = self._scores(images)
        latency_ms = (time.perf_counter() - started) * 1000 / len(images)
        return self._predictions(probs, ood, food, top_k, latency_ms)

    def _scores(
        self, images: list[Image.Image]
    ) -> tuple[torch.Tensor, torch.Tensor, FoodSignal | None]:
        """Calibrated dish probabilities, feature distances and the food signal (None without
        a gate), one row or value a photo."""
        threads = torch.get_num_threads()
        beside = self._start_food_gate(images) if threads > 1 else None
        # With the food gate on a helper thread, the classifier leaves it one of the caller's.
        with _torch_threads(threads - 1 if beside else threads):
            batch = torch.stack([self._preset(image) for image in images])
            with torch.inference_mode():
                features = self._model.features(batch)
                probs = F.softmax(self._model.head(features) / self._temperature, dim=1)
                ood = self._scorer.score(features)
        if beside:
            gate = beside.result()
        elif self._gate:
            gate = self._gate.signals(images)
        else:
            gate = None
        return probs, ood, food_signal(gate, self._food_score, probs.max(1).values)

    def _predictions(
        self,
        probs: torch.Tensor,
        ood: torch.Tensor,
        food: FoodSignal | None,
        top_k: int,
        latency_ms: float,
    ) -> list[Prediction]:
        not_food, unsure = status_masks(probs.max(1).values, ood, food, self._thresholds)
        values, indices = probs.topk(min(top_k, len(self._labels)), dim=1)
        food_scores = _published_food_scores(food, len(probs))
        statuses: list[Status] = [
            "not_food" if far else "unsure" if low else "confident"
            for far, low in zip(not_food.tolist(), unsure.tolist(), strict=True)
        ]
        predictions = []
        for row_values, row_indices, score, food_score, status in zip(
            values, indices, ood, food_scores, statuses, strict=True
        ):
            top = [
                DishScore(self._labels[i], self._display[self._labels[i]], float(p))
                for p, i in zip(row_values.tolist(), row_indices.tolist(), strict=True)
            ]
            predictions.append(Prediction(status, top, float(score), food_score, latency_ms))
        return predictions

    def _start_food_gate(self, images: list[Image.Image]) -> Future[GateSignals] | None:
        """Run the food gate on a single-threaded helper, beside the classifier.

        EfficientNet-Lite0 at batch 1 gains little from a second thread (16 ms on one, 14.5 on
        two), so the two networks side by side, one thread each, finish about a third sooner
        than one after the other on two threads.
        """
        if self._gate is None:
            return None
        return self._gate_threads.submit(self._gate.signals, images)


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` PyTorch threads on this thread, then give back the old
    count; nothing is set when the count is already right."""
    before = torch.get_num_threads()
    if count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class FoodSignal:
    """The food gate's mass and, where the card has one, the food score's logit."""

    mass: torch.Tensor
    score: torch.Tensor | None


def food_signal(
    gate: GateSignals | None, score: FoodScore | None, top_probability: torch.Tensor
) -> FoodSignal | None:
    """What :func:`status_masks` reads of the food gate: its mass, and the food score's logit
    where the card has a food score (cards from before it have the mass alone)."""
    if gate is None:
        return None
    return FoodSignal(gate.food_mass, None if score is None else score(gate, top_probability))


def _published_food_scores(food: FoodSignal | None, count: int) -> list[float | None]:
    if food is None:
        return [None] * count
    if food.score is None:
        return food.mass.tolist()
    return torch.sigmoid(food.score).tolist()


def status_masks(
    top_probability: torch.Tensor,
    ood_score: torch.Tensor,
    food: FoodSignal | None,
    thresholds: dict[str, float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(not_food, unsure)`` masks: the one rule that predictions use and calibration measures.

    ``not_food`` when any threshold the card sets is crossed: the food score's logit below
    ``min_food_score`` (cards from 2026-12 on set only this one), the food mass below
    ``min_food_mass``, or the feature distance above ``not_food_score`` (older cards).
    ``unsure``: otherwise, when the top probability is below ``unsure_probability``.
    """
    not_food = torch.zeros_like(top_probability, dtype=torch.bool)
    if "not_food_score" in thresholds:
        not_food |= ood_score > thresholds["not_food_score"]
    if food is not None and "min_food_mass" in thresholds:
        not_food |= food.mass < thresholds["min_food_mass"]
    if food is not None and food.score is not None and "min_food_score" in thresholds:
        not_food |= food.score < thresholds["min_food_score"]
    unsure = ~not_food & (top_probability < thresholds["unsure_probability"])
    return not_food, unsure


def resolve_model_dir(uri: str | None, settings: Settings) -> Path:
    """A local model directory for ``uri`` (or the ``MODEL_URI`` setting, or the default model).

    ``uri`` is an ``s3://`` prefix, a directory, or the name of a model under ``models/``.
    """
    uri = uri or settings.model_uri
    if not uri:
        return DEFAULT_MODEL_DIR
    if uri.startswith("s3://"):
        return fetch_s3_model(uri, settings.model_cache_dir)
    path = Path(uri).expanduser()
    if not path.exists() and "/" not in uri and (BUNDLED_MODELS / uri).is_dir():
        return BUNDLED_MODELS / uri
    return path


def load_classifier(uri: str | None = None, *, settings: Settings | None = None) -> Classifier:
    """Load, verify and prepare a model for inference.

    Args:
        uri: a model directory or ``s3://bucket/prefix/``; default: the ``MODEL_URI`` setting,
            else the model bundled under ``models/``.

    Raises:
        ModelArtifactError: the model is missing, corrupt, truncated or inconsistent.
        ModelDownloadError: an S3 model could not be downloaded.
    """
    settings = settings or get_settings()
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    started = time.perf_counter()
    model_dir = resolve_model_dir(uri, settings)
    classifier = Classifier(*load_artifact(model_dir), precision=settings.inference_precision)
    # The first forward pass sets up oneDNN's kernels (about a second on 2 cores); do it here
    # so the first person's photo does not pay for it.
    classifier.predict(Image.new("RGB", (classifier.card["input_size"],) * 2))
    logger.info(
        "model loaded name=%s dishes=%d precision=%s seconds=%.2f",
        classifier.name,
        len(classifier.labels),
        str(classifier.dtype).removeprefix("torch."),
        time.perf_counter() - started,
    )
    return classifier


def load_model_info(uri: str | None = None, *, settings: Settings | None = None) -> ModelInfo:
    """The card and labels of the model :func:`load_classifier` would load, fetched and checked
    the same way (an ``s3://`` model is downloaded into the cache), with no network built.

    Raises:
        ModelArtifactError: the model is missing, corrupt, truncated or inconsistent.
        ModelDownloadError: an S3 model could not be downloaded.
    """
    model_dir = resolve_model_dir(uri, settings or get_settings())
    card, labels, _ = verify_artifact(model_dir)
    return ModelInfo(card, labels)
