"""The food gate: the original ImageNet classifier's food classes as a not-food signal."""

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from classifier.food_gate import (
    FoodGate,
    FoodScore,
    GateSignals,
    choose_food_classes,
    food_mass,
    food_score_features,
    gate_signals,
)
from classifier.nonfood import nonfood_images


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
    food = gate.signals(photos).food_mass
    others = gate.signals([item.image for item in nonfood_images()]).food_mass
    assert food.median() > 5 * others.median()
    assert (others < 0.1).float().mean() >= 0.8


def test_gate_signals_are_food_mass_and_entropy() -> None:
    probs = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    signals = gate_signals(probs, [0])
    assert signals.food_mass.tolist() == pytest.approx([0.5, 0.25])
    assert signals.entropy.tolist() == pytest.approx([math.log(2), math.log(4)], abs=1e-5)


def test_food_score_separates_food_from_what_it_was_shown_as_not_food() -> None:
    generator = torch.Generator().manual_seed(0)

    def rows(n: int, mass: float, entropy: float, top: float) -> torch.Tensor:
        gate = GateSignals(
            (torch.full((n,), mass) + 0.05 * torch.rand(n, generator=generator)).clamp(0, 1),
            torch.full((n,), entropy) + 0.3 * torch.rand(n, generator=generator),
        )
        return food_score_features(gate, torch.full((n,), top))

    food, not_food = rows(200, 0.9, 1.0, 0.8), rows(30, 0.05, 5.0, 0.2)
    score = FoodScore.fit(food, not_food)
    again = FoodScore.from_card(score.to_card())
    dish = GateSignals(torch.tensor([0.85]), torch.tensor([1.2]))
    chart = GateSignals(torch.tensor([0.06]), torch.tensor([5.1]))
    assert again(dish, torch.tensor([0.7])).item() > 0 > again(chart, torch.tensor([0.3])).item()
    assert again(dish, torch.tensor([0.7])) == pytest.approx(score(dish, torch.tensor([0.7])))


def test_a_card_naming_other_features_is_refused() -> None:
    spec = {"features": ["something else"], "weights": [1.0], "bias": 0, "mean": [0], "std": [1]}
    with pytest.raises(ValueError, match="features"):
        FoodScore.from_card(spec)
