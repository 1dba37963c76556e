"""How the signals combine into a status: ``status_masks`` on scores built by hand."""

import pytest
import torch

from classifier.predictor import FoodSignal, status_masks

NEW_CARD = {"unsure_probability": 0.7, "min_food_score": -1.0}
OLD_CARD = {"unsure_probability": 0.7, "not_food_score": 1500.0, "min_food_mass": 0.06}


def status(thresholds, *, top, ood=500.0, mass=0.9, score=3.0) -> str:
    food = FoodSignal(torch.tensor([mass]), None if score is None else torch.tensor([score]))
    not_food, unsure = status_masks(torch.tensor([top]), torch.tensor([ood]), food, thresholds)
    return "not_food" if not_food.item() else "unsure" if unsure.item() else "confident"


@pytest.mark.parametrize(
    ("case", "signals", "expected"),
    [
        ("a clear dish", {"top": 0.95}, "confident"),
        ("a dish, not sure which", {"top": 0.4}, "unsure"),
        ("right at the unsure threshold", {"top": 0.7}, "confident"),
        ("no food: low food score", {"top": 0.95, "score": -4.0}, "not_food"),
        ("no food, model unsure too", {"top": 0.2, "score": -4.0}, "not_food"),
        ("right at the food threshold", {"top": 0.95, "score": -1.0}, "confident"),
        # The feature distance no longer refuses a photo on a card that does not set it:
        # the garlic bread of issue 22 (top 1.00, gate 0.998, distance 1629).
        ("near-certain dish far in feature space", {"top": 1.0, "ood": 1629.0}, "confident"),
        ("a low food mass alone does not refuse", {"top": 0.95, "mass": 0.01}, "confident"),
    ],
)
def test_statuses_on_a_card_with_the_food_score(case, signals, expected) -> None:
    assert status(NEW_CARD, **signals) == expected, case


@pytest.mark.parametrize(
    ("case", "signals", "expected"),
    [
        ("a clear dish", {"top": 0.95, "score": None}, "confident"),
        ("far in feature space", {"top": 0.95, "ood": 1629.0, "score": None}, "not_food"),
        ("the gate sees no food", {"top": 0.95, "mass": 0.01, "score": None}, "not_food"),
        ("unsure", {"top": 0.5, "score": None}, "unsure"),
    ],
)
def test_cards_from_before_the_food_score_keep_their_rule(case, signals, expected) -> None:
    assert status(OLD_CARD, **signals) == expected, case


def test_without_a_food_gate_only_the_distance_and_probability_count() -> None:
    top, ood = torch.tensor([0.9, 0.9, 0.3]), torch.tensor([100.0, 2000.0, 100.0])
    not_food, unsure = status_masks(top, ood, None, OLD_CARD)
    assert not_food.tolist() == [False, True, False]
    assert unsure.tolist() == [False, False, True]


def test_an_image_too_long_to_resize_is_refused_before_the_network(artifact_dir) -> None:
    from PIL import Image

    from classifier import load_classifier
    from intake.errors import ImageShapeError

    classifier = load_classifier(str(artifact_dir))
    with pytest.raises(ImageShapeError):
        classifier.predict(Image.new("RGB", (1, 100_000)))
