"""The not-food signal: does the original ImageNet classifier see food in the photo?

EfficientNet-Lite0's un-fine-tuned ImageNet head knows dozens of dishes, fruits, vegetables,
plates and bowls. The gate keeps the original weights, so fine-tuning on dishes cannot teach
it to see a dish in a cat. Per photo it gives two numbers:

- the **food mass**: its probability on food classes, which are the classes the training
  photos fall into (picked from data) together with ImageNet's whole food block, classes
  923-969 (plate, dishes, breads, fruit, vegetables, drinks; without 958, hay). Real photos
  that the data-picked classes missed went to mashed potato, dough and espresso;
- the **ImageNet entropy**: how spread its belief is. A chart, a page, noise or a solid
  colour is nothing ImageNet knows, so the belief is flat and a little of it lands on food
  classes by chance; a real photo of food is something, usually food.

:class:`FoodScore` combines those two with the dish model's top probability in a logistic
model (three weights and a bias, fitted on real food photos against generated non-food images;
see ``classifier.calibrate``); a photo whose score is below the card's
``thresholds.min_food_score`` is ``not_food``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from classifier.model import load_backbone
from classifier.presets import EvalPreset
from classifier.trunk import InferenceTrunk

ARCHITECTURE = "efficientnet-lite0"
# 160 px flags every scikit-image sample at a 2 % cost on food photos; 128 px misses a few.
INPUT_SIZE = 160
# Keep the ImageNet classes that hold this share of the training photos' probability mass.
COVERAGE = 0.8
# ImageNet's food block: plate (923) to eggnog (969), without hay (958).
IMAGENET_FOOD_BLOCK = tuple(i for i in range(923, 970) if i != 958)


class FoodGate:
    """``signals(images)``: the ImageNet food mass and entropy, one value each a photo."""

    def __init__(
        self,
        food_classes: Sequence[int] = (),
        input_size: int = INPUT_SIZE,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.food_classes = [int(i) for i in food_classes]
        self.input_size = input_size
        self._preset = EvalPreset(crop_size=input_size, resize_size=input_size)
        self._network = InferenceTrunk(load_backbone(ARCHITECTURE, image_size=input_size), dtype)

    def imagenet_probabilities(self, images: list[Image.Image]) -> torch.Tensor:
        batch = torch.stack([self._preset(image) for image in images])
        with torch.inference_mode():
            logits = self._network(batch)
        return F.softmax(logits, dim=1)

    def signals(self, images: list[Image.Image]) -> GateSignals:
        return gate_signals(self.imagenet_probabilities(images), self.food_classes)

    def to_card(self) -> dict[str, Any]:
        return {
            "architecture": ARCHITECTURE,
            "weights": "ImageNet, as published (not fine-tuned)",
            "input_size": self.input_size,
            "food_classes": self.food_classes,
        }

    @classmethod
    def from_card(cls, spec: dict[str, Any], dtype: torch.dtype = torch.float32) -> FoodGate:
        return cls(spec["food_classes"], spec["input_size"], dtype)


def choose_food_classes(imagenet_probs: torch.Tensor, coverage: float = COVERAGE) -> list[int]:
    """The fewest ImageNet classes that hold ``coverage`` of the photos' mean probability."""
    mass = imagenet_probs.double().mean(0)
    order = mass.argsort(descending=True)
    needed = int((mass[order].cumsum(0) < coverage).sum()) + 1
    return sorted(order[:needed].tolist())


def food_mass(imagenet_probs: torch.Tensor, food_classes: Sequence[int]) -> torch.Tensor:
    return imagenet_probs[:, list(food_classes)].sum(1)


@dataclass(frozen=True)
class GateSignals:
    """One value a photo each: the food mass and the ImageNet entropy (nats)."""

    food_mass: torch.Tensor
    entropy: torch.Tensor

    def __getitem__(self, rows: Any) -> GateSignals:
        return GateSignals(self.food_mass[rows], self.entropy[rows])


def gate_signals(imagenet_probs: torch.Tensor, food_classes: Sequence[int]) -> GateSignals:
    probs = imagenet_probs.float()
    entropy = -(probs * probs.clamp(min=1e-12).log()).sum(1)
    return GateSignals(food_mass(probs, food_classes), entropy)


FOOD_SCORE_FEATURES = ("logit_food_mass", "imagenet_entropy", "log_top_probability")


def food_score_features(gate: GateSignals, top_probability: torch.Tensor) -> torch.Tensor:
    """The :class:`FoodScore` inputs, one row a photo, in ``FOOD_SCORE_FEATURES`` order."""
    mass = gate.food_mass.double().clamp(1e-6, 1 - 1e-6)
    return torch.stack(
        [
            (mass / (1 - mass)).log(),
            gate.entropy.double(),
            top_probability.double().clamp(min=1e-6).log(),
        ],
        dim=1,
    )


@dataclass(frozen=True)
class FoodScore:
    """A logistic model on standardised :func:`food_score_features`: higher is more like food.

    ``__call__`` gives the logit; ``sigmoid`` of it is what predictions publish as
    ``food_score``.
    """

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, gate: GateSignals, top_probability: torch.Tensor) -> torch.Tensor:
        x = food_score_features(gate, top_probability)
        x = (x - torch.tensor(self.mean, dtype=x.dtype)) / torch.tensor(self.std, dtype=x.dtype)
        return (x @ torch.tensor(self.weights, dtype=x.dtype) + self.bias).float()

    @classmethod
    def fit(cls, food: torch.Tensor, not_food: torch.Tensor, l2: float = 1e-3) -> FoodScore:
        """Fit on feature rows of food and of non-food images, each side weighted half (the
        non-food set is small), with a little L2 so that a separable set stays finite."""
        mean, std = food.mean(0), food.std(0).clamp(min=1e-6)
        x = (torch.cat([food, not_food]) - mean) / std
        y = torch.cat([torch.ones(len(food)), torch.zeros(len(not_food))]).double()
        weight = torch.cat(
            [
                torch.full((len(food),), 0.5 / len(food)),
                torch.full((len(not_food),), 0.5 / len(not_food)),
            ]
        ).double()
        w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros((), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            losses = F.binary_cross_entropy_with_logits(x @ w + b, y, reduction="none")
            loss = (losses * weight).sum() + l2 * (w**2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return cls(
            tuple(w.detach().tolist()), float(b.detach()), tuple(mean.tolist()), tuple(std.tolist())
        )

    def to_card(self) -> dict[str, Any]:
        return {
            "features": list(FOOD_SCORE_FEATURES),
            "weights": list(self.weights),
            "bias": self.bias,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_card(cls, spec: dict[str, Any]) -> FoodScore:
        if tuple(spec["features"]) != FOOD_SCORE_FEATURES:
            raise ValueError(
                f"food score features {spec['features']} are not {FOOD_SCORE_FEATURES}"
            )
        return cls(
            tuple(spec["weights"]), float(spec["bias"]), tuple(spec["mean"]), tuple(spec["std"])
        )
