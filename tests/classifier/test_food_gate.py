"""The food gate: the original ImageNet classifier's food classes as a not-food signal."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from classifier.evaluate import non_food_images
from classifier.food_gate import FoodGate, choose_food_classes, food_mass


def test_food_classes_cover_the_requested_mass() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.6, 0.2, 0.1, 0.1]])
    # Mean mass: 0.55, 0.25, 0.125, 0.075.
    assert choose_food_classes(probs, coverage=0.5) == [0]
    assert choose_food_classes(probs, coverage=0.8) == [0, 1]
    assert choose_food_classes(probs, coverage=0.85) == [0, 1, 2]


def test_food_mass_sums_the_chosen_classes() -> None:
    probs = torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]])
    assert food_mass(probs, [0, 2]).tolist() == pytest.approx([0.8, 0.5])


def test_card_round_trip() -> None:
    gate = FoodGate([963, 965], input_size=128)
    again = FoodGate.from_card(gate.to_card())
    assert (again.food_classes, again.input_size) == ([963, 965], 128)


@pytest.mark.needs_data
def test_real_dishes_carry_more_food_mass_than_non_food_photos(food_mnist: Path) -> None:
    # ImageNet's own dish classes (pizza, carbonara, burrito, ...); the real gate picks its
    # classes from training photos, this test only checks the signal on real images.
    dishes = [923, 924, 925, 926, 927, 928, 933, 934, 935, 959, 962, 963, 964, 965]
    gate = FoodGate(dishes)
    entries = (food_mnist / "meta" / "val.txt").read_text().split()[::75]
    photos = []
    for entry in entries:
        with Image.open(food_mnist / "images" / f"{entry}.jpg") as image:
            photos.append(image.convert("RGB"))
    food = gate.food_mass(photos)
    others = gate.food_mass(list(non_food_images().values()))
    assert food.median() > 5 * others.median()
    assert (others < 0.1).float().mean() >= 0.8
