"""Measure a model artifact on a Food-101-layout split, through the same path the app uses.

    python -m classifier.evaluate --model models/food10-lite0 --data ../shared/data/food-mnist

Prints top-1/top-3/top-5, calibration, a per-class table, how often validation photos are
flagged, and the not-food check on scikit-image's sample photos; writes ``metrics.json`` and
``confusion.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from classifier.cli import add_data_arguments
from classifier.data import FoodDataset, photo_batches
from classifier.metrics import (
    confusion_matrix,
    expected_calibration_error,
    per_class_accuracy,
    topk_accuracy,
)
from classifier.predictor import Classifier, Prediction, load_classifier
from dishlens.settings import exit_on_bad_setting

# scikit-image's bundled sample photos, none of them a dish (``coffee`` is a cup of coffee).
NON_FOOD_SAMPLES = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "checkerboard",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "stereo_motorcycle",
    "text",
)


def non_food_images() -> dict[str, Image.Image]:
    """scikit-image's sample photos as RGB images (needs the dev dependency scikit-image)."""
    from skimage import data
    from skimage.util import img_as_ubyte

    images = {}
    for name in NON_FOOD_SAMPLES:
        array = getattr(data, name)()
        if isinstance(array, tuple):  # stereo pairs
            array = array[0]
        array = img_as_ubyte(array)
        image = Image.fromarray(array)
        images[name] = image.convert("RGB")
    return images


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
    predictions = classifier.predict_batch(list(non_food_images().values()))
    per_image = {
        name: {"status": p.status, "top": p.best.label, "probability": p.best.probability}
        for name, p in zip(NON_FOOD_SAMPLES, predictions, strict=True)
    }
    flagged = sum(p.status != "confident" for p in predictions) / len(predictions)
    return {"images": len(predictions), "flagged_share": flagged, "per_image": per_image}


def save_confusion_png(matrix: torch.Tensor, labels: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(6, len(labels) * 0.5)
    figure, axes = plt.subplots(figsize=(size, size))
    normalised = matrix.float() / matrix.sum(1, keepdim=True).clamp(min=1)
    axes.imshow(normalised.numpy(), cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if len(labels) <= 20:
        for (row, col), value in np.ndenumerate(matrix.numpy()):
            if value:
                axes.text(col, row, str(value), ha="center", va="center", fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


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
        "_confusion": confusion_matrix(probs, targets, len(labels)),
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
    if non_food:
        print(
            f"non-food photos: {non_food['flagged_share']:.0%} of {non_food['images']} flagged "
            "unsure or not_food"
        )
        for name, result in non_food["per_image"].items():
            print(
                f"  {name:<22} {result['status']:<10} ({result['top']} {result['probability']:.2f})"
            )


def main(args: argparse.Namespace) -> dict[str, Any]:
    classifier = load_classifier(args.model)
    dataset = FoodDataset(args.data, args.split, limit_per_class=args.limit_per_class)
    metrics = evaluate(classifier, dataset, args.batch_size)
    non_food = None if args.skip_non_food else check_non_food(classifier)
    print_report(metrics, non_food)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_confusion_png(metrics.pop("_confusion"), list(classifier.labels), out / "confusion.png")
    report = {
        "model": classifier.name,
        "data": str(args.data),
        "split": args.split,
        **metrics,
        "non_food": non_food,
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"Wrote {out / 'metrics.json'} and {out / 'confusion.png'}")
    return report


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
        help="where to write metrics.json and confusion.png (default: runs/evaluation)",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--skip-non-food",
        action="store_true",
        help="skip the not-food check on scikit-image's sample photos",
    )
    return parser


if __name__ == "__main__":
    with exit_on_bad_setting("classifier.evaluate"):
        main(get_args_parser().parse_args())
