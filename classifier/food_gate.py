"""A second not-food signal: does the original ImageNet classifier see food in the photo?

EfficientNet-Lite0's un-fine-tuned ImageNet head knows dozens of dishes, fruits, vegetables,
plates and bowls. The gate adds up its probabilities over the ImageNet classes that the
training photos fall into (picked from data, not by hand); a photo whose sum is lower than
almost every validation photo's is flagged ``not_food`` (the threshold is the card's
``thresholds.min_food_mass``). The gate keeps the original weights,
so fine-tuning on dishes cannot teach it to see a dish in a cat.
"""

from __future__ import annotations

from collections.abc import Sequence
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


class FoodGate:
    """``food_mass(images)``: the ImageNet probability on food classes, one value a photo."""

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

    def food_mass(self, images: list[Image.Image]) -> torch.Tensor:
        return food_mass(self.imagenet_probabilities(images), self.food_classes)

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
