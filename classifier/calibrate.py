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
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from classifier.artifact import code_version, load_artifact, save_artifact
from classifier.cli import add_data_arguments, add_option
from classifier.data import FoodDataset, photo_batches
from classifier.errors import ModelArtifactError
from classifier.food_gate import FoodGate, choose_food_classes, food_mass
from classifier.metrics import (
    MahalanobisScorer,
    expected_calibration_error,
    fit_temperature,
    per_class_accuracy,
    topk_accuracy,
)
from classifier.model import FoodNet
from classifier.predictor import status_masks
from classifier.presets import EvalPreset
from dishlens.settings import exit_on_bad_setting

NOT_FOOD_DETECTOR = (
    "Two signals; either one flags a photo. (1) Mahalanobis distance of pooled features to the "
    "nearest class mean, shared covariance fitted on the training split (Lee et al., 2018). "
    "(2) The food gate: the un-fine-tuned ImageNet EfficientNet-Lite0's probability on the "
    "ImageNet classes the training photos fall into."
)
# Training photos a dish used to pick the food gate's ImageNet classes.
GATE_PHOTOS_PER_DISH = 30
# Training photos a dish used to fit the feature-distance detector (one shared 1280×1280
# covariance is well estimated from 20,000 photos; all 55,550 cost minutes for nothing).
DETECTOR_PHOTOS_PER_DISH = 200


@dataclass(frozen=True)
class CalibrationOptions:
    val_split: str = "val"
    not_food_rate: float = 0.02
    food_gate_rate: float = 0.02
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
    ("not_food_rate", share, "share of val photos the feature-distance detector flags"),
    ("food_gate_rate", share, "share of val photos the ImageNet food gate flags"),
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


def choose_thresholds(
    probs: torch.Tensor,
    ood_scores: torch.Tensor,
    food_mass: torch.Tensor,
    targets: torch.Tensor,
    *,
    not_food_rate: float,
    food_gate_rate: float,
    confident_precision: float,
    precision_confidence: float = 0.5,
    max_flagged: float,
) -> dict[str, float]:
    """Pick the not-food and unsure thresholds on validation data.

    ``not_food_score`` flags ``not_food_rate`` of the validation photos and ``min_food_mass``
    flags ``food_gate_rate`` of them. ``unsure_probability``: the lowest top-probability
    threshold at which the remaining confident answers are right ``confident_precision`` of the
    time, with ``precision_confidence`` (a lower confidence bound, so the promise holds beyond
    these photos rather than just at the edge), capped so at most ``max_flagged`` of the
    validation photos end up flagged.
    """
    ood_threshold = float(torch.quantile(ood_scores, 1 - not_food_rate))
    min_food_mass = float(torch.quantile(food_mass.double(), food_gate_rate))
    kept = (ood_scores <= ood_threshold) & (food_mass >= min_food_mass)
    confidence, predicted = probs.max(1)
    correct = predicted.eq(targets)
    candidates = torch.sort(confidence[kept]).values
    cap_index = int(max_flagged * len(probs)) - int((~kept).sum())
    unsure_threshold = 0.0
    for i, threshold in enumerate(candidates.tolist()):
        if i > max(cap_index, 0):
            break
        unsure_threshold = threshold
        confident = kept & (confidence >= threshold)
        right = int(correct[confident].sum())
        if accuracy_lower_bound(right, int(confident.sum()), precision_confidence) >= (
            confident_precision
        ):
            break
    return {
        "not_food_score": ood_threshold,
        "min_food_mass": min_food_mass,
        "unsure_probability": unsure_threshold,
    }


def status_counts(probs, ood_scores, food_mass, thresholds) -> dict[str, float]:
    not_food, unsure = status_masks(probs.max(1).values, ood_scores, food_mass, thresholds)
    confident = ~not_food & ~unsure
    return {
        "not_food": not_food.float().mean().item(),
        "unsure": unsure.float().mean().item(),
        "confident": confident.float().mean().item(),
    }


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


def calibrate(
    model: FoodNet,
    classes: list[str],
    data_root: Path,
    preset: EvalPreset,
    options: CalibrationOptions,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """Fit everything a prediction's status needs; returns the card fields and the scorer."""
    device = device or torch.device("cpu")
    limit = options.limit_per_class
    val_set = FoodDataset(data_root, options.val_split, preset, limit_per_class=limit)
    detector_limit = min(limit or DETECTOR_PHOTOS_PER_DISH, DETECTOR_PHOTOS_PER_DISH)
    train_plain = FoodDataset(data_root, "train", preset, limit_per_class=detector_limit)
    val_logits, val_features, val_targets = collect_outputs(
        model, _loader(val_set, options.batch_size), device, "val"
    )
    _, train_features, train_targets = collect_outputs(
        model, _loader(train_plain, options.batch_size), device, "train features"
    )
    scorer = MahalanobisScorer.fit(train_features, train_targets, len(classes))

    gate = FoodGate()
    gate_sample = FoodDataset(
        data_root, "train", limit_per_class=min(limit or GATE_PHOTOS_PER_DISH, GATE_PHOTOS_PER_DISH)
    )
    gate.food_classes = choose_food_classes(
        gate_outputs(gate, gate_sample, options.batch_size, "food gate classes")
    )
    val_photos = FoodDataset(data_root, options.val_split, limit_per_class=limit)
    val_food_mass = food_mass(
        gate_outputs(gate, val_photos, options.batch_size, "food gate"), gate.food_classes
    )

    temperature = fit_temperature(val_logits, val_targets)
    probs = F.softmax(val_logits / temperature, dim=1)
    ood = scorer.score(val_features)
    thresholds = choose_thresholds(
        probs,
        ood,
        val_food_mass,
        val_targets,
        not_food_rate=options.not_food_rate,
        food_gate_rate=options.food_gate_rate,
        confident_precision=options.confident_precision,
        precision_confidence=options.precision_confidence,
        max_flagged=options.max_flagged,
    )
    metrics = {
        "split": options.val_split,
        "images": len(val_set),
        **measure(val_logits, val_targets, classes, temperature),
        "flagged_share": status_counts(probs, ood, val_food_mass, thresholds),
    }
    return {
        "scorer": scorer,
        "card": {
            "metrics": metrics,
            "temperature": temperature,
            "thresholds": thresholds,
            "food_gate": gate.to_card(),
            "not_food_detector": NOT_FOOD_DETECTOR,
            "calibration": {
                "options": dataclasses.asdict(options),
                "training_images": len(train_plain),
                "food_gate_photos": len(gate_sample),
                "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            },
        },
    }


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
    model, _, labels, card = load_artifact(model_dir)
    if args.average_with:
        card = average_weights(model, labels, card, [Path(d) for d in args.average_with])
    if args.version:
        card["version"] = args.version
    model = model.to(memory_format=torch.channels_last)
    if args.test_time_flip is not None:
        model.test_time_flip = card["test_time_flip"] = args.test_time_flip
    options = CalibrationOptions.from_args(args, card.get("calibration", {}).get("options"))
    preset = EvalPreset.from_card(card)
    result = calibrate(model, list(labels), Path(args.data), preset, options)
    card = {**card, **result["card"]}
    card["preprocessing"] = {**card["preprocessing"], "pipeline": preset.pipeline_text()}
    out = Path(args.out) if args.out else model_dir
    card = save_artifact(out, model, result["scorer"], labels, card)
    print(summary(out, card))
    return card


def summary(out: Path, card: dict[str, Any]) -> str:
    m, flagged = card["metrics"], card["metrics"]["flagged_share"]
    return (
        f"Wrote {out}: top-1 {m['top1']:.3f}, top-5 {m['top5']:.3f}, ECE {m['ece']:.3f} "
        f"(T={card['temperature']:.2f}); val flagged not_food {flagged['not_food']:.3f}, "
        f"unsure {flagged['unsure']:.3f}"
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
    add_calibration_arguments(parser, keep_card=True)
    add_data_arguments(parser)
    return parser


if __name__ == "__main__":
    with exit_on_bad_setting("classifier.calibrate"):
        main(get_args_parser().parse_args())
