"""Training on feedback beside a Food-101-layout folder: weights per source, validation on the
folder's own split only."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from classifier import nonfood, train
from dishlens.feedback import NOT_FOOD, FeedbackRecord, FeedbackStore
from tests.classifier.test_cli import train_args


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("feedback/", ("feedback/", 1.0)),
        ("feedback:3", ("feedback", 3.0)),
        ("s3://bucket/feedback/", ("s3://bucket/feedback/", 1.0)),
        ("s3://bucket/feedback/:0.5", ("s3://bucket/feedback/", 0.5)),
    ],
)
def test_a_source_may_carry_a_weight(text: str, expected: tuple[str, float]) -> None:
    assert train.split_source_weight(text) == expected


@pytest.mark.parametrize(("text", "message"), [("fb:0", "positive"), (":2", "names no source")])
def test_a_bad_weight_is_refused_by_name(text: str, message: str, capsys) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        train.extra_source(text)
    with pytest.raises(SystemExit):
        train.get_args_parser().parse_args(["--data", "d", "--out", "o", "--extra-data", text])
    assert "--extra-data" in capsys.readouterr().err


def test_weighted_sampling_draws_a_source_in_proportion_to_its_weight() -> None:
    # 100 photos of source A (weight 1) and 10 of source B (weight 10): B is drawn as often.
    dataset = TensorDataset(torch.zeros(110, 1), torch.tensor([0] * 100 + [1] * 10))
    args = argparse.Namespace(seed=0, batch_size=110, workers=0)
    loader = train.make_loader(
        dataset, args, shuffle=True, sample_weights=[1.0] * 100 + [10.0] * 10
    )
    draws = Counter(int(t) for _ in range(20) for _, targets in loader for t in targets)
    assert sum(draws.values()) == 20 * 110
    assert 0.4 < draws[1] / sum(draws.values()) < 0.6


def feedback_from_shared_photos(food_mnist: Path, uri: str) -> None:
    """Six answers about real photos: 3 confirmations, 1 correction, 1 not food, 1 dish the
    model does not have (a correction to a label outside food-mnist)."""
    store = FeedbackStore(uri)
    val = (food_mnist / "meta" / "val.txt").read_text().split()
    answers = [
        (val[-1], "apple_pie", True, None),
        (val[-2], "apple_pie", True, None),
        (val[-3], "baklava", True, None),
        (val[-4], "baklava", False, "bibimbap"),
        (val[-5], "bibimbap", False, NOT_FOOD),
        (val[-6], "bibimbap", False, "ramen"),
    ]
    for entry, label, correct, correction in answers:
        with Image.open(food_mnist / "images" / f"{entry}.jpg") as image:
            record = FeedbackRecord(label, 0.9, "confident", correct, correction)
            store.save(image, record)


@pytest.mark.needs_data
def test_train_takes_feedback_beside_the_food101_folder(food_mnist: Path, tmp_path: Path) -> None:
    feedback_from_shared_photos(food_mnist, str(tmp_path / "feedback"))
    out = tmp_path / "with-feedback"
    card = train.main(train_args(food_mnist, out, "--extra-data", f"{tmp_path / 'feedback'}:3"))
    data, feedback = card["training"]["sources"]
    assert data == {
        "source": str(food_mnist),
        "kind": "food-101 layout",
        "weight": 1.0,
        "images": 20,
    }
    assert feedback["kind"] == "feedback" and feedback["weight"] == 3.0
    assert feedback["images"] == 4 and feedback["unknown_dish_photos"] == 1
    assert feedback["not_food_photos"] == 1
    assert card["training"]["images"] == 24
    # Validation (and so calibration and promotion) stays on the folder's own split.
    assert card["metrics"]["images"] == 20
    # The photo people called not food joins the not-food detector's non-food photos.
    set_by = card["calibration"]["set_by"]["food_score and min_food_score"]
    assert "the generated non-food set and 1 photo people called not food" in set_by
    generated_fit_half = len(nonfood.split(nonfood.nonfood_images())[0])
    assert set_by.endswith(f"every other image of each kind ({generated_fit_half + 1})")
