"""The bundled default model on real photos: right dishes, honest statuses, thread safety."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from classifier import Classifier, load_classifier
from classifier.evaluate import non_food_images

pytestmark = pytest.mark.needs_data


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier()


@pytest.fixture(scope="module")
def val_sample(food_mnist: Path) -> list[tuple[Image.Image, str]]:
    """Ten validation photos of each dish, spread over the split."""
    entries = (food_mnist / "meta" / "val.txt").read_text().split()
    sample = []
    for entry in entries[::7][:100]:
        with Image.open(food_mnist / "images" / f"{entry}.jpg") as image:
            sample.append((image.convert("RGB"), entry.split("/")[0]))
    return sample


def test_the_shipped_model_is_a_trained_calibrated_one(classifier: Classifier) -> None:
    # Regression floors a little under what the shipped model measured (see its card and the
    # README); the targets (top-1 >= 0.90) are reported, not asserted here.
    card = classifier.card
    assert card["num_classes"] == len(classifier.labels) >= 10
    assert card["metrics"]["images"] == 750
    assert card["metrics"]["top1"] >= 0.88 and card["metrics"]["top3"] >= 0.97
    assert card["metrics"]["ece"] <= 0.05


def test_real_val_photos_are_named_correctly(classifier, val_sample) -> None:
    predictions = classifier.predict_batch([image for image, _ in val_sample])
    correct = [p.best.label == label for p, (_, label) in zip(predictions, val_sample, strict=True)]
    assert sum(correct) / len(correct) >= 0.85
    flagged = [p.status != "confident" for p in predictions]
    assert sum(flagged) / len(flagged) <= 0.10
    confident_right = [
        c for c, p in zip(correct, predictions, strict=True) if p.status == "confident"
    ]
    assert sum(confident_right) / len(confident_right) >= 0.9


def test_non_food_photos_are_flagged(classifier) -> None:
    images = non_food_images()
    assert len(images) >= 15
    statuses = [p.status for p in classifier.predict_batch(list(images.values()))]
    # Measured 19 of 23 flagged (0.83) for the shipped model; the target of 0.90 is not met yet.
    assert sum(s != "confident" for s in statuses) / len(statuses) >= 0.8
    assert statuses.count("not_food") >= len(statuses) // 2


def test_batch_and_single_predictions_agree(classifier, val_sample) -> None:
    images = [image for image, _ in val_sample[:8]]
    for single, batched in zip(
        [classifier.predict(i) for i in images], classifier.predict_batch(images), strict=True
    ):
        assert single.best.label == batched.best.label
        assert single.best.probability == pytest.approx(batched.best.probability, abs=1e-4)
        assert single.status == batched.status


def test_concurrent_predictions_match_serial_ones(classifier, val_sample) -> None:
    images = [image for image, _ in val_sample[:16]]
    serial = [classifier.predict(image) for image in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(classifier.predict, images * 2))
    # Same answers; probabilities may differ in the last float bits, because threads can use
    # different intra-op thread counts and so sum in a different order.
    for got, expected in zip(concurrent, serial * 2, strict=True):
        assert got.status == expected.status
        assert [d.label for d in got.top] == [d.label for d in expected.top]
        for a, b in zip(got.top, expected.top, strict=True):
            assert a.probability == pytest.approx(b.probability, abs=1e-5)
        assert got.ood_score == pytest.approx(expected.ood_score, rel=1e-5)
