"""Measure a model artifact on a Food-101-layout split, through the same path the app uses.

    python -m classifier.evaluate --model models/food10-lite0 --data ../shared/data/food-mnist

Prints top-1/top-3/top-5, calibration, a per-class table, the share of each status, the most
confused dishes, and the not-food check on the generated non-food set
(:mod:`classifier.nonfood`); writes into ``--out``: ``metrics.json``, ``confusion.png``,
``reliability.png`` (calibration before and after temperature), ``coverage.png`` (accuracy and
share confident against the unsure threshold), ``statuses.png`` (the share of each status on
these photos and on the non-food set) and ``confused-pairs.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from classifier.cli import add_data_arguments
from classifier.data import FoodDataset, photo_batches
from classifier.metrics import (
    confusion_matrix,
    expected_calibration_error,
    per_class_accuracy,
    topk_accuracy,
)
from classifier.nonfood import nonfood_images
from classifier.plots import (
    most_confused,
    save_confused_pairs,
    save_confusion,
    save_coverage,
    save_reliability,
    save_statuses,
)
from classifier.predictor import Classifier, Prediction, load_classifier
from dishlens.settings import exit_on_bad_setting


def predict_split(
    classifier: Classifier, dataset: FoodDataset, batch_size: int
) -> tuple[list[Prediction], torch.Tensor]:
    predictions: list[Prediction] = []
    n_classes = len(classifier.labels)
    for images in photo_batches(dataset, batch_size, "predict"):
        predictions += classifier.predict_batch(images, top_k=n_classes)
    targets = torch.tensor([target for _, target in dataset.samples])
    return predictions, targets


def probability_matrix(predictions: list[Prediction], labels: list[str]) -> torch.Tensor:
    index = {label: i for i, label in enumerate(labels)}
    probs = torch.zeros(len(predictions), len(labels))
    for row, prediction in enumerate(predictions):
        for dish in prediction.top:
            probs[row, index[dish.label]] = dish.probability
    return probs


def flagged_share(predictions: list[Prediction]) -> dict[str, float]:
    n = len(predictions)
    return {
        status: sum(p.status == status for p in predictions) / n
        for status in ("confident", "unsure", "not_food")
    }


def check_non_food(classifier: Classifier) -> dict[str, Any]:
    """Statuses on the generated non-food set: all of it should be refused (``not_food``),
    and none of it answered ``confident``."""
    images = nonfood_images()
    predictions = classifier.predict_batch([item.image for item in images])
    per_image = {
        item.name: {
            "family": item.family,
            "status": p.status,
            "top": p.best.label,
            "probability": p.best.probability,
        }
        for item, p in zip(images, predictions, strict=True)
    }
    return {"images": len(predictions), **flagged_share(predictions), "per_image": per_image}


def evaluate(classifier: Classifier, dataset: FoodDataset, batch_size: int) -> dict[str, Any]:
    labels = list(classifier.labels)
    if dataset.classes != labels:
        # Map dataset classes onto the model's label order (e.g. a 101-dish model on 10 dishes).
        missing = set(dataset.classes) - set(labels)
        if missing:
            raise SystemExit(f"The model does not know these dishes: {', '.join(sorted(missing))}")
    predictions, targets = predict_split(classifier, dataset, batch_size)
    targets = torch.tensor([labels.index(dataset.classes[t]) for t in targets.tolist()])
    probs = probability_matrix(predictions, labels)
    confusion = confusion_matrix(probs, targets, len(labels))
    return {
        "images": len(dataset),
        "top1": topk_accuracy(probs, targets, 1),
        "top3": topk_accuracy(probs, targets, 3),
        "top5": topk_accuracy(probs, targets, 5),
        "ece": expected_calibration_error(probs, targets),
        "per_class_accuracy": {
            label: acc
            for label, acc in zip(
                labels, per_class_accuracy(probs, targets, len(labels)), strict=True
            )
            if acc == acc  # drop absent classes
        },
        "flagged_share": flagged_share(predictions),
        "confident_accuracy": confident_accuracy(predictions, probs, targets),
        "most_confused": most_confused(confusion, labels),
        "_confusion": confusion,
        "_probs": probs,
        "_targets": targets,
    }


def confident_accuracy(predictions, probs, targets) -> float:
    confident = torch.tensor([p.status == "confident" for p in predictions])
    if not confident.any():
        return float("nan")
    return probs[confident].argmax(1).eq(targets[confident]).float().mean().item()


def print_report(metrics: dict[str, Any], non_food: dict[str, Any] | None) -> None:
    print(
        f"images {metrics['images']}: top-1 {metrics['top1']:.3f}  top-3 {metrics['top3']:.3f}  "
        f"top-5 {metrics['top5']:.3f}  ECE {metrics['ece']:.3f}"
    )
    shares = metrics["flagged_share"]
    print(
        f"status: confident {shares['confident']:.3f}  unsure {shares['unsure']:.3f}  "
        f"not_food {shares['not_food']:.3f}; accuracy among confident "
        f"{metrics['confident_accuracy']:.3f}"
    )
    print(f"{'dish':<28} accuracy")
    for label, accuracy in metrics["per_class_accuracy"].items():
        print(f"{label:<28} {accuracy:.3f}")
    print("most confused (true → predicted, photos):")
    for pair in metrics["most_confused"]:
        print(f"  {pair['true']} → {pair['predicted']}: {pair['photos']}")
    if non_food:
        print(
            f"non-food images: {non_food['not_food']:.0%} of {non_food['images']} refused "
            f"(not_food), {non_food['confident']:.0%} confident"
        )
        for name, result in non_food["per_image"].items():
            if result["status"] != "not_food":
                print(
                    f"  not refused: {name:<26} {result['status']:<10} "
                    f"({result['top']} {result['probability']:.2f})"
                )


def main(args: argparse.Namespace) -> dict[str, Any]:
    classifier = load_classifier(args.model)
    dataset = FoodDataset(args.data, args.split, limit_per_class=args.limit_per_class)
    metrics = evaluate(classifier, dataset, args.batch_size)
    non_food = None if args.skip_non_food else check_non_food(classifier)
    print_report(metrics, non_food)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_figures(classifier, metrics, non_food, out, f"{Path(args.data).name} {args.split}")
    report = {
        "model": classifier.name,
        "data": str(args.data),
        "split": args.split,
        **metrics,
        "non_food": non_food,
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"Wrote {out / 'metrics.json'} and the figures beside it")
    return report


def save_figures(
    classifier: Classifier,
    metrics: dict[str, Any],
    non_food: dict[str, Any] | None,
    out: Path,
    title: str,
) -> None:
    """Write the PNGs; pops the tensors the figures need out of ``metrics``."""
    labels = list(classifier.labels)
    probs, targets = metrics.pop("_probs"), metrics.pop("_targets")
    save_confusion(metrics.pop("_confusion"), labels, out / "confusion.png")
    temperature = float(classifier.card["temperature"])
    # The published probabilities are softmax(z / T); softmax(T · log p) gives back softmax(z).
    before = torch.softmax(temperature * probs.clamp(min=1e-12).log(), dim=1)
    save_reliability(before, probs, targets, out / "reliability.png", title)
    chosen = float(classifier.card["thresholds"]["unsure_probability"])
    save_coverage(probs, targets, chosen, out / "coverage.png", title)
    rates = {title: metrics["flagged_share"]}
    if non_food:
        rates[f"non-food set ({non_food['images']})"] = non_food
    save_statuses(rates, out / "statuses.png")
    save_confused_pairs(metrics["most_confused"], out / "confused-pairs.png", title)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Evaluate a DishLens model.", add_help=add_help)
    parser.add_argument(
        "--model",
        default=None,
        help="model directory or s3:// URI (default: MODEL_URI, else the bundled model)",
    )
    parser.add_argument("--data", required=True, help="Food-101-layout folder")
    parser.add_argument("--split", default="val", help="split to measure (default: val)")
    parser.add_argument(
        "--out",
        default="runs/evaluation",
        help="where to write metrics.json and the figures (default: runs/evaluation)",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--skip-non-food",
        action="store_true",
        help="skip the not-food check on the generated non-food set",
    )
    return parser


if __name__ == "__main__":
    with exit_on_bad_setting("classifier.evaluate"):
        main(get_args_parser().parse_args())
