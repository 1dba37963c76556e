"""Calibrate a model: temperature, the two not-food signals and the status thresholds.

    python -m classifier.calibrate --model models/food10-lite0 --data ../shared/data/food-mnist

Training ends with this step; the CLI re-runs it on an existing artifact (for example after a
change to the not-food detectors) and rewrites the artifact in place or into ``--out``. The
temperature and thresholds are fitted on the validation split, the feature-space detector on
the training split, and the food gate's ImageNet classes on a sample of the training photos.

``--average-with DIR…`` first averages the model's weights with other runs of the same model
(a "model soup", Wortsman et al., 2022), for example a run and its warm restart; the average
is then calibrated like any model.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from classifier.artifact import code_version, load_artifact, save_artifact
from classifier.cli import add_data_arguments, add_option
from classifier.data import FeedbackPhoto, FoodDataset, photo_batches, read_feedback
from classifier.errors import DatasetError, ModelArtifactError
from classifier.food_gate import (
    IMAGENET_FOOD_BLOCK,
    FoodGate,
    FoodScore,
    GateSignals,
    choose_food_classes,
    food_score_features,
)
from classifier.metrics import (
    MahalanobisScorer,
    expected_calibration_error,
    fit_temperature,
    per_class_accuracy,
    topk_accuracy,
)
from classifier.model import FoodNet
from classifier.nonfood import NonFoodImage, nonfood_images, split
from classifier.predictor import food_signal, status_masks
from classifier.presets import EvalPreset
from dishlens.settings import exit_on_bad_setting, load_settings

# The family of the non-food images that come from people's "not food" answers.
PEOPLE_NON_FOOD = "people"

NOT_FOOD_DETECTOR = (
    "A logistic food score on three numbers a photo: the un-fine-tuned ImageNet "
    "EfficientNet-Lite0's probability on food classes (the classes the training photos fall "
    "into, plus ImageNet's food block 923-969) as a logit, that network's entropy, and the dish "
    "model's log top probability. Fitted on real-resolution food photos against generated "
    "non-food images (and photos people called not food, where feedback was given); a photo "
    "scoring below thresholds.min_food_score is not_food. The feature "
    "distance (Mahalanobis, Lee et al. 2018) is still published as ood_score, but on real photos "
    "it is lower for non-food than for food, so it does not decide the status."
)
# Training photos a dish used to pick the food gate's ImageNet classes.
GATE_PHOTOS_PER_DISH = 30
# Training photos a dish used to fit the feature-distance detector (one shared 1280×1280
# covariance is well estimated from 20,000 photos; all 55,550 cost minutes for nothing).
DETECTOR_PHOTOS_PER_DISH = 200


@dataclass(frozen=True)
class CalibrationOptions:
    val_split: str = "val"
    food_refusal_rate: float = 0.01
    confident_precision: float = 0.97
    precision_confidence: float = 0.95
    max_flagged: float = 0.045
    batch_size: int = 32
    limit_per_class: int | None = None

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, recorded: dict[str, Any] | None = None
    ) -> CalibrationOptions:
        """The options on the command line; a policy option left out (None) keeps its value in
        ``recorded`` (a card's last calibration), else the default."""
        values = {name: getattr(args, name) for name in cls.__dataclass_fields__}
        for name, _, _ in POLICY_OPTIONS:
            if values[name] is None:
                values[name] = (recorded or {}).get(name, getattr(cls(), name))
        return cls(**values)


def share(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def confidence_level(text: str) -> float:
    """An argparse type: a confidence from 0.5 up to, but not including, 1."""
    value = float(text)
    if not 0.5 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not from 0.5 up to (not including) 1")
    return value


# The options that decide what a status means, with their command-line type and help.
POLICY_OPTIONS = (
    ("val_split", str, "split for calibration"),
    (
        "food_refusal_rate",
        share,
        "share of the real food photos (the fitting half) that the not-food detector may refuse",
    ),
    ("confident_precision", share, "accuracy wanted among confident val answers"),
    (
        "precision_confidence",
        confidence_level,
        "confidence that confident answers reach that accuracy beyond the val photos: a "
        "one-sided Wilson lower bound must reach it (0.5: the val accuracy itself)",
    ),
    ("max_flagged", share, "most val photos flagged unsure or not food"),
)


def add_calibration_arguments(parser: argparse.ArgumentParser, *, keep_card: bool = False) -> None:
    """The policy options; with ``keep_card`` one left out keeps the card's last value."""
    defaults = CalibrationOptions()
    for name, kind, help_text in POLICY_OPTIONS:
        flag, default = "--" + name.replace("_", "-"), getattr(defaults, name)
        if keep_card:
            help_text = f"{help_text} (default: as the card's last calibration, else {default})"
            parser.add_argument(flag, type=kind, default=None, help=help_text)
        else:
            add_option(parser, flag, default, help_text, kind=kind)


@torch.no_grad()
def collect_outputs(
    model: FoodNet, loader: DataLoader, device: torch.device, desc: str = "eval"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(logits, pooled_features, targets)`` for a whole loader, on the CPU."""
    model.eval()
    logits, features, targets = [], [], []
    for images, batch_targets in tqdm(loader, desc=desc, unit="batch", leave=False):
        images = images.to(device, memory_format=torch.channels_last)
        batch_features = model.features(images)
        logits.append(model.head(batch_features).float().cpu())
        features.append(batch_features.float().cpu())
        targets.append(batch_targets)
    return torch.cat(logits), torch.cat(features), torch.cat(targets)


def gate_outputs(gate: FoodGate, dataset: FoodDataset, batch_size: int, desc: str) -> torch.Tensor:
    """The gate's ImageNet probabilities for every photo of ``dataset`` (no transform)."""
    batches = photo_batches(dataset, batch_size, desc, leave=False)
    return torch.cat([gate.imagenet_probabilities(images) for images in batches])


def accuracy_lower_bound(correct: int, total: int, confidence: float) -> float:
    """One-sided Wilson score lower bound on an accuracy measured as ``correct / total``.

    The true accuracy is at least this with probability ``confidence``; 0.5 gives the measured
    accuracy itself.
    """
    if total == 0:
        return 0.0
    z = NormalDist().inv_cdf(confidence)
    p, z2 = correct / total, z * z
    centre = p + z2 / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return (centre - spread) / (1 + z2 / total)


def choose_unsure_threshold(
    probs: torch.Tensor,
    targets: torch.Tensor,
    *,
    confident_precision: float,
    precision_confidence: float = 0.5,
    max_flagged: float,
) -> float:
    """The lowest top-probability threshold at which the confident answers are right
    ``confident_precision`` of the time with ``precision_confidence`` (a lower confidence bound,
    so the promise holds beyond these photos rather than just at the edge), capped so that at
    most ``max_flagged`` of the photos end up unsure."""
    confidence, predicted = probs.max(1)
    correct = predicted.eq(targets)
    candidates = torch.sort(confidence).values
    cap_index = int(max_flagged * len(probs))
    threshold = 0.0
    for i, candidate in enumerate(candidates.tolist()):
        if i > max(cap_index, 0):
            break
        threshold = candidate
        confident = confidence >= candidate
        right = int(correct[confident].sum())
        if accuracy_lower_bound(right, int(confident.sum()), precision_confidence) >= (
            confident_precision
        ):
            break
    return threshold


def crossfit_ece(logits: torch.Tensor, targets: torch.Tensor, seed: int = 0) -> float:
    """ECE with the temperature fitted on one half of the data and measured on the other."""
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))
    halves = order[: len(order) // 2], order[len(order) // 2 :]
    eces = []
    for fit, held_out in (halves, halves[::-1]):
        t = fit_temperature(logits[fit], targets[fit])
        eces.append(
            expected_calibration_error(F.softmax(logits[held_out] / t, 1), targets[held_out])
        )
    return sum(eces) / 2


def measure(logits: torch.Tensor, targets: torch.Tensor, classes: list[str], temperature: float):
    probs = F.softmax(logits / temperature, dim=1)
    return {
        "top1": topk_accuracy(logits, targets, 1),
        "top3": topk_accuracy(logits, targets, 3),
        "top5": topk_accuracy(logits, targets, 5),
        "ece_before_temperature": expected_calibration_error(F.softmax(logits, 1), targets),
        "ece": expected_calibration_error(probs, targets),
        "ece_crossfit": crossfit_ece(logits, targets),
        "per_class_accuracy": dict(
            zip(classes, per_class_accuracy(logits, targets, len(classes)), strict=True)
        ),
    }


def _loader(dataset: Dataset, batch_size: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False)


@dataclass(frozen=True)
class PhotoSignals:
    """What the status rule reads for a set of photos, one row a photo."""

    logits: torch.Tensor
    ood: torch.Tensor
    gate: GateSignals

    def __getitem__(self, rows: Any) -> PhotoSignals:
        return PhotoSignals(self.logits[rows], self.ood[rows], self.gate[rows])

    def probabilities(self, temperature: float) -> torch.Tensor:
        return F.softmax(self.logits / temperature, dim=1)


@torch.no_grad()
def photo_signals(
    model: FoodNet,
    scorer: MahalanobisScorer,
    gate: FoodGate,
    preset: EvalPreset,
    batches: Iterator[list[Image.Image]],
) -> PhotoSignals:
    """Dish logits, feature distance and food-gate signals for photos, through the shipping
    pipeline (the dish model sees ``preset(photo)``, the gate the photo itself)."""
    model.eval()
    logits, ood, mass, entropy = [], [], [], []
    for images in batches:
        features = model.features(torch.stack([preset(image) for image in images]))
        logits.append(model.head(features).float())
        ood.append(scorer.score(features))
        signals = gate.signals(images)
        mass.append(signals.food_mass)
        entropy.append(signals.entropy)
    return PhotoSignals(
        torch.cat(logits), torch.cat(ood), GateSignals(torch.cat(mass), torch.cat(entropy))
    )


def alternate_halves(count: int) -> tuple[list[int], list[int]]:
    """``(fit, check)`` indices: every other photo to each half, so both see every dish."""
    return list(range(0, count, 2)), list(range(1, count, 2))


def status_report(
    signals: PhotoSignals,
    temperature: float,
    score: FoodScore,
    thresholds: dict[str, float],
    targets: torch.Tensor | None = None,
) -> dict[str, float]:
    """The share of each status; with ``targets``, also the accuracy among confident answers."""
    probs = signals.probabilities(temperature)
    top = probs.max(1).values
    food = food_signal(signals.gate, score, top)
    not_food, unsure = status_masks(top, signals.ood, food, thresholds)
    confident = ~not_food & ~unsure
    report = {
        "images": len(top),
        "not_food": not_food.float().mean().item(),
        "unsure": unsure.float().mean().item(),
        "confident": confident.float().mean().item(),
    }
    if targets is not None and confident.any():
        right = probs[confident].argmax(1).eq(targets[confident])
        report["confident_accuracy"] = right.float().mean().item()
    return report


def fit_food_score(
    food: PhotoSignals,
    not_food: PhotoSignals,
    temperature: float,
    refusal_rate: float,
) -> tuple[FoodScore, float]:
    """The food score and its threshold: the ``refusal_rate`` quantile of the food photos'
    scores, so that about that share of real food is refused."""

    food_top = food.probabilities(temperature).max(1).values
    not_food_top = not_food.probabilities(temperature).max(1).values
    score = FoodScore.fit(
        food_score_features(food.gate, food_top), food_score_features(not_food.gate, not_food_top)
    )
    threshold = float(torch.quantile(score(food.gate, food_top).double(), refusal_rate))
    return score, threshold


def choose_gate_classes(data_root: Path, options: CalibrationOptions) -> FoodGate:
    """A food gate whose classes are those the training photos fall into, plus ImageNet's food
    block (real photos that the data-picked classes miss land there)."""
    gate = FoodGate()
    limit = min(options.limit_per_class or GATE_PHOTOS_PER_DISH, GATE_PHOTOS_PER_DISH)
    sample = FoodDataset(data_root, "train", limit_per_class=limit)
    picked = choose_food_classes(gate_outputs(gate, sample, options.batch_size, "food gate"))
    gate.food_classes = sorted(set(picked) | set(IMAGENET_FOOD_BLOCK))
    return gate


@dataclass(frozen=True)
class DishCalibration:
    """The temperature and unsure threshold, fitted on photos the model never trained on."""

    temperature: float
    unsure_probability: float
    metrics: dict[str, Any]
    photos: str


def calibrate_dish_probabilities(
    model: FoodNet,
    classes: list[str],
    data_root: Path,
    preset: EvalPreset,
    options: CalibrationOptions,
    device: torch.device,
) -> DishCalibration:
    val_set = FoodDataset(
        data_root, options.val_split, preset, limit_per_class=options.limit_per_class
    )
    logits, _, targets = collect_outputs(model, _loader(val_set, options.batch_size), device, "val")
    temperature = fit_temperature(logits, targets)
    unsure_probability = choose_unsure_threshold(
        F.softmax(logits / temperature, dim=1),
        targets,
        confident_precision=options.confident_precision,
        precision_confidence=options.precision_confidence,
        max_flagged=options.max_flagged,
    )
    metrics = {
        "split": options.val_split,
        "images": len(val_set),
        **measure(logits, targets, classes, temperature),
    }
    photos = f"{data_root.name} {options.val_split} ({len(val_set)})"
    return DishCalibration(temperature, unsure_probability, metrics, photos)


@dataclass(frozen=True)
class NotFoodFit:
    """The food gate and food score, and the photos that fitted and checked them."""

    gate: FoodGate
    score: FoodScore
    min_food_score: float
    food_root: Path
    food: PhotoSignals
    food_targets: torch.Tensor
    food_halves: tuple[list[int], list[int]]
    non_food: PhotoSignals
    non_food_halves: tuple[list[int], list[int]]
    people_non_food: int = 0


def fit_not_food(
    model: FoodNet,
    scorer: MahalanobisScorer,
    classes: list[str],
    data_root: Path,
    preset: EvalPreset,
    options: CalibrationOptions,
    temperature: float,
    real_photos: Path | None,
    people_non_food: list[NonFoodImage],
) -> NotFoodFit:
    """The food gate's classes from ``data_root``'s training photos; the food score fitted on
    every other real food photo against every other non-food image: the generated set and the
    photos people called not food (``people_non_food``)."""
    model = model.cpu()
    gate = choose_gate_classes(data_root, options)
    food_root = real_photos or data_root
    food_set = FoodDataset(food_root, "train", limit_per_class=options.limit_per_class)
    batches = photo_batches(food_set, options.batch_size, "real photos")
    food = photo_signals(model, scorer, gate, preset, batches)
    images = nonfood_images() + people_non_food
    non_food = photo_signals(model, scorer, gate, preset, iter([[i.image for i in images]]))
    food_halves, non_food_halves = alternate_halves(len(food_set)), split_indices(images)
    score, min_food_score = fit_food_score(
        food[food_halves[0]], non_food[non_food_halves[0]], temperature, options.food_refusal_rate
    )
    return NotFoodFit(
        gate,
        score,
        min_food_score,
        food_root,
        food,
        _targets_in(food_set, classes),
        food_halves,
        non_food,
        non_food_halves,
        sum(item.family == PEOPLE_NON_FOOD for item in images),
    )


def feedback_non_food(sources: list[str], cache_dir: Path) -> list[NonFoodImage]:
    """The photos people called "not food" in feedback ``sources`` (folders or ``s3://``
    prefixes), each photo once; photos whose answers disagree are left out as in training."""
    return people_non_food_images(
        [photo for source in sources for photo in read_feedback(source, cache_dir).not_food]
    )


def people_non_food_images(photos: list[FeedbackPhoto]) -> list[NonFoodImage]:
    """Feedback photos people called "not food", as non-food images for calibration."""
    images = []
    for photo in photos:
        with Image.open(photo.path) as image:
            rgb = image.convert("RGB")
        images.append(NonFoodImage(photo.sha256[:12], PEOPLE_NON_FOOD, rgb))
    return images


def calibration_record(
    options: CalibrationOptions,
    dish: DishCalibration,
    not_food: NotFoodFit,
    thresholds: dict[str, float],
    distance_fit: str,
) -> dict[str, Any]:
    """The card's ``calibration``: the options, which photos set what, and the statuses on
    the fitting and checking halves."""

    def report(signals: PhotoSignals, targets: torch.Tensor | None = None) -> dict[str, float]:
        return status_report(signals, dish.temperature, not_food.score, thresholds, targets)

    (food_fit, food_check), (non_food_fit, non_food_check) = (
        not_food.food_halves,
        not_food.non_food_halves,
    )
    food, targets, non_food = not_food.food, not_food.food_targets, not_food.non_food
    return {
        "options": dataclasses.asdict(options),
        "set_by": {
            "temperature": dish.photos,
            "unsure_probability": dish.photos,
            "food_score and min_food_score": f"{not_food.food_root.name} train, every other "
            f"photo ({len(food_fit)}), against {non_food_text(not_food.people_non_food)}, every "
            f"other image of each kind ({len(non_food_fit)})",
            "feature distance": distance_fit,
        },
        "real_photos": {
            "data": str(not_food.food_root),
            "fit": report(food[food_fit], targets[food_fit]),
            "check": report(food[food_check], targets[food_check]),
        },
        "non_food": {
            "fit": report(non_food[non_food_fit]),
            "check": report(non_food[non_food_check]),
        },
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def non_food_text(people: int) -> str:
    if not people:
        return "the generated non-food set"
    photos = "photo" if people == 1 else "photos"
    return f"the generated non-food set and {people} {photos} people called not food"


def calibrate(
    model: FoodNet,
    classes: list[str],
    data_root: Path,
    preset: EvalPreset,
    options: CalibrationOptions,
    device: torch.device | None = None,
    *,
    real_photos: Path | None = None,
    scorer: MahalanobisScorer | None = None,
    people_non_food: list[NonFoodImage] | None = None,
) -> Calibration:
    """Fit everything a prediction's status needs.

    - the temperature and the unsure threshold on ``data_root``'s validation split: photos the
      model never trained on;
    - the feature-distance scorer (published, not deciding) on its training split, unless
      ``scorer`` is given: it depends on the weights alone, so a model whose weights did not
      change keeps its own (fitting it reads 20,200 photos);
    - the food gate's classes on a sample of its training photos;
    - the food score and its threshold on real food photos, ``real_photos``'s training split
      (default: ``data_root``'s), against the generated non-food set: every other photo of
      each fits, the others check. The food gate never trained on any of these photos, so
      its signals on them are fair even where the dish model trained on the same photos.
      ``people_non_food`` (photos people called not food, :func:`feedback_non_food`) join the
      non-food set, split between fitting and checking the same way.
    """
    device = device or torch.device("cpu")
    model = model.to(device)
    dish = calibrate_dish_probabilities(model, classes, data_root, preset, options, device)
    distance_fit = "kept from the model's last calibration (same weights)"
    if scorer is None:
        scorer, distance_fit = fit_distance_scorer(model, classes, data_root, preset, options)
    not_food = fit_not_food(
        model,
        scorer,
        classes,
        data_root,
        preset,
        options,
        dish.temperature,
        real_photos,
        people_non_food or [],
    )
    thresholds = {
        "unsure_probability": dish.unsure_probability,
        "min_food_score": not_food.min_food_score,
    }
    return Calibration(
        scorer=scorer,
        card={
            "metrics": dish.metrics,
            "temperature": dish.temperature,
            "thresholds": thresholds,
            "food_gate": {**not_food.gate.to_card(), "score": not_food.score.to_card()},
            "not_food_detector": NOT_FOOD_DETECTOR,
            "calibration": calibration_record(options, dish, not_food, thresholds, distance_fit),
        },
    )


def fit_distance_scorer(
    model: FoodNet,
    classes: list[str],
    data_root: Path,
    preset: EvalPreset,
    options: CalibrationOptions,
) -> tuple[MahalanobisScorer, str]:
    """The feature-distance scorer fitted on training photos, and which photos those were."""
    limit = min(options.limit_per_class or DETECTOR_PHOTOS_PER_DISH, DETECTOR_PHOTOS_PER_DISH)
    photos = FoodDataset(data_root, "train", preset, limit_per_class=limit)
    device = next(model.parameters()).device
    _, features, targets = collect_outputs(
        model, _loader(photos, options.batch_size), device, "train features"
    )
    scorer = MahalanobisScorer.fit(features, targets, len(classes))
    return scorer, f"{data_root.name} train ({len(photos)})"


@dataclass(frozen=True)
class Calibration:
    """A calibration's card fields and its fitted feature-distance scorer."""

    scorer: MahalanobisScorer
    card: dict[str, Any]


def split_indices(images: list[NonFoodImage]) -> tuple[list[int], list[int]]:
    fit, check = split(images)
    position = {id(item): i for i, item in enumerate(images)}
    return [position[id(item)] for item in fit], [position[id(item)] for item in check]


def _targets_in(dataset: FoodDataset, classes: list[str]) -> torch.Tensor:
    """The dataset's targets as indices into ``classes`` (a 10-dish set under a 101-dish model)."""
    index = {label: i for i, label in enumerate(classes)}
    missing = set(dataset.classes) - set(index)
    if missing:
        raise DatasetError(f"The model does not know these dishes: {', '.join(sorted(missing))}")
    return torch.tensor([index[dataset.classes[target]] for _, target in dataset.samples])


def average_weights(
    model: FoodNet, labels: dict[str, str], card: dict[str, Any], others: list[Path]
) -> dict[str, Any]:
    """Replace ``model``'s weights with their mean over it and the models in ``others``;
    returns ``card`` for the new model: today's version, with the averaged models recorded
    under ``training``.

    Raises:
        ModelArtifactError: another model has other labels, architecture or input pipeline.
    """
    states, averaged = [model.state_dict()], [_identity(card)]
    for other_dir in others:
        other, _, other_labels, other_card = load_artifact(other_dir)
        for name, ours, theirs in (
            ("labels", list(labels), list(other_labels)),  # ids in output order
            ("architecture", card["architecture"], other_card["architecture"]),
            (
                "input pipeline",
                EvalPreset.from_card(card).pipeline_text(),
                EvalPreset.from_card(other_card).pipeline_text(),
            ),
        ):
            if ours != theirs:
                raise ModelArtifactError(
                    f"{other_dir} cannot be averaged with this model: they differ in {name}.",
                    str(other_dir / "card.json"),
                )
        states.append(other.state_dict())
        averaged.append(_identity(other_card))
    model.load_state_dict(
        {
            key: torch.stack([state[key].float() for state in states]).mean(0)
            if value.is_floating_point()
            else value
            for key, value in states[0].items()
        }
    )
    return {
        **card,
        "training": {**card.get("training", {}), "averaged_weights_of": averaged},
        # the mean is a new model
        "version": datetime.date.today().isoformat(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
    }


def _identity(card: dict[str, Any]) -> str:
    return f"{card['name']}@{card['version']} (weights sha256 {card['weights_sha256'][:12]})"


def main(args: argparse.Namespace) -> dict[str, Any]:
    model_dir = Path(args.model)
    model, kept_scorer, labels, card = load_artifact(model_dir)
    scorer: MahalanobisScorer | None = kept_scorer
    if args.average_with:
        card = average_weights(model, labels, card, [Path(d) for d in args.average_with])
        scorer = None  # new weights: the feature distance is fitted again
    if args.version:
        card["version"] = args.version
    model = model.to(memory_format=torch.channels_last)
    if args.test_time_flip is not None:
        model.test_time_flip = card["test_time_flip"] = args.test_time_flip
    options = CalibrationOptions.from_args(args, card.get("calibration", {}).get("options"))
    preset = EvalPreset.from_card(card)
    real_photos = Path(args.real_photos) if args.real_photos else None
    people_non_food = feedback_non_food(args.non_food_feedback, load_settings().model_cache_dir)
    result = calibrate(
        model,
        list(labels),
        Path(args.data),
        preset,
        options,
        real_photos=real_photos,
        scorer=scorer,
        people_non_food=people_non_food,
    )
    card = {**card, **result.card}
    card["preprocessing"] = {**card["preprocessing"], "pipeline": preset.pipeline_text()}
    out = Path(args.out) if args.out else model_dir
    card = save_artifact(out, model, result.scorer, labels, card)
    print(summary(out, card))
    return card


def summary(out: Path, card: dict[str, Any]) -> str:
    m, record = card["metrics"], card["calibration"]
    real, non_food = record["real_photos"]["check"], record["non_food"]["check"]
    return (
        f"Wrote {out}: top-1 {m['top1']:.3f}, top-5 {m['top5']:.3f}, ECE {m['ece']:.3f} "
        f"(T={card['temperature']:.2f}); real photos (check half): confident "
        f"{real['confident']:.3f}, unsure {real['unsure']:.3f}, not_food {real['not_food']:.3f}; "
        f"non-food (check half) refused {non_food['not_food']:.3f}, confident "
        f"{non_food['confident']:.3f}"
    )


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Re-calibrate a DishLens model artifact.", add_help=add_help
    )
    parser.add_argument("--model", required=True, help="model directory to calibrate")
    parser.add_argument(
        "--data", required=True, help="the Food-101-layout folder it was trained on"
    )
    parser.add_argument("--out", default=None, help="write here instead of over --model")
    parser.add_argument(
        "--average-with",
        nargs="+",
        default=[],
        metavar="DIR",
        help="first average the weights with these runs of the same model (a model soup)",
    )
    parser.add_argument(
        "--version",
        default=None,
        help="version of the written model (default: today's date for an average, else as the "
        "card says); publishing refuses a version that is already published",
    )
    parser.add_argument(
        "--test-time-flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each photo with its mirror image (default: as the card says)",
    )
    add_real_photos_argument(parser)
    parser.add_argument(
        "--non-food-feedback",
        action="append",
        default=[],
        metavar="SOURCE",
        help="a feedback folder or s3:// prefix whose 'not food' answers join the non-food "
        "photos the not-food detector is fitted and checked on; repeatable",
    )
    add_calibration_arguments(parser, keep_card=True)
    add_data_arguments(parser)
    return parser


def add_real_photos_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--real-photos",
        default=None,
        help="Food-101-layout folder of real-resolution food photos whose training split fits "
        "the not-food detector (default: the --data folder's)",
    )


if __name__ == "__main__":
    with exit_on_bad_setting("classifier.calibrate"):
        main(get_args_parser().parse_args())
