"""Feedback written by the app's store, read back as training data (folder and S3 on moto)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import numpy as np
import pytest
from PIL import Image

from classifier import feedback_report
from classifier.calibrate import PEOPLE_NON_FOOD, feedback_non_food
from classifier.data import FeedbackDataset, read_feedback
from classifier.errors import DatasetError
from dishlens.feedback import NOT_FOOD, OTHER_DISH, FeedbackRecord, FeedbackStore


def photo(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def answer(label: str, correct: bool, correction: str | None = None) -> FeedbackRecord:
    return FeedbackRecord(
        predicted_label=label,
        predicted_probability=0.8,
        status="confident",
        correct=correct,
        correction=correction,
    )


# (photo seed, what the model said, the person's yes/no, their correction)
ANSWERS = [
    (1, "apple_pie", True, None),
    (2, "apple_pie", True, None),
    (3, "apple_pie", False, "baklava"),  # a correction: an example of baklava
    (1, "apple_pie", True, None),  # photo 1 again, same answer: a duplicate
    (4, "baklava", True, None),
    (4, "baklava", False, "bibimbap"),  # photo 4 again, another dish: contradictory
    (5, "bibimbap", False, NOT_FOOD),
    (6, "bibimbap", False, OTHER_DISH),
    (7, "baklava", False, None),  # "no" without saying what it is
]


def write_feedback(uri: str) -> None:
    store = FeedbackStore(uri)
    for seed, label, correct, correction in ANSWERS:
        store.save(photo(seed), answer(label, correct, correction))


def check(feedback, broken: int = 0) -> None:
    assert feedback.per_dish() == {"apple_pie": 2, "baklava": 1}
    assert [p.label for p in feedback.not_food] == [NOT_FOOD]
    assert [p.label for p in feedback.for_review] == [OTHER_DISH]
    assert feedback.records == len(ANSWERS) + broken and feedback.unreadable == broken
    assert feedback.duplicates == 1
    assert (feedback.contradictory_photos, feedback.contradictory_records) == (1, 2)
    assert feedback.without_answer == 1
    duplicated = [p for p in feedback.dishes if len(p.record_ids) == 2]
    assert len(duplicated) == 1 and duplicated[0].label == "apple_pie"


def test_a_feedback_folder_reads_as_labelled_photos(tmp_path: Path) -> None:
    write_feedback(str(tmp_path / "feedback"))
    (tmp_path / "feedback" / "broken.json").write_text("{not json")
    feedback = read_feedback(str(tmp_path / "feedback"), tmp_path / "cache")
    check(feedback, broken=1)

    dataset = FeedbackDataset(feedback.dishes, ["baklava", "bibimbap"])
    assert len(dataset) == 1 and dataset.unknown == 2  # apple_pie is not one of these dishes
    image, target = dataset[0]
    assert target == 0 and image.size == (64, 48)


def test_not_food_answers_become_non_food_images_for_calibration(tmp_path: Path) -> None:
    write_feedback(str(tmp_path / "a"))
    write_feedback(str(tmp_path / "b"))  # the same photos in a second source
    images = feedback_non_food([str(tmp_path / "a"), str(tmp_path / "b")], tmp_path / "cache")
    assert [item.family for item in images] == [PEOPLE_NON_FOOD] * 2
    assert images[0].image.size == (64, 48) and images[0].image.mode == "RGB"
    assert feedback_non_food([], tmp_path / "cache") == []


def test_a_feedback_prefix_on_s3_reads_the_same(aws: str, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket="answers")
    write_feedback("s3://answers/feedback/")
    check(read_feedback("s3://answers/feedback/", tmp_path / "cache"))


def test_the_report_counts_usable_photos_per_dish(tmp_path: Path, capsys) -> None:
    write_feedback(str(tmp_path / "fb"))
    args = feedback_report.get_args_parser().parse_args([str(tmp_path / "fb"), "--json"])
    assert feedback_report.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["per_dish"] == {"apple_pie": 2, "baklava": 1}
    assert report["duplicates"] == 1 and report["contradictory_photos"] == 1

    assert (
        feedback_report.main(feedback_report.get_args_parser().parse_args([str(tmp_path / "fb")]))
        == 0
    )
    text = capsys.readouterr().out
    assert "apple_pie" in text and "photos whose answers disagree (left out): 1" in text


def test_a_missing_feedback_folder_is_a_clear_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        read_feedback(str(tmp_path / "nowhere"), tmp_path)
    args = feedback_report.get_args_parser().parse_args([str(tmp_path / "nowhere")])
    assert feedback_report.main(args) == 1
    assert "does not exist" in capsys.readouterr().err
