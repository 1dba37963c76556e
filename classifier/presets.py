"""Image pipelines: one for training, one for everything else (evaluate, predict, app, API).

EfficientNet-Lite's ImageNet weights expect ``(x - 127) / 128`` on 0–255 pixels, so the
pipelines keep pixels as 0–255 floats and normalise with mean 127 and std 128.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image
from torchvision.transforms import v2

MEAN = (127.0, 127.0, 127.0)
STD = (128.0, 128.0, 128.0)


def _to_network_input() -> list[v2.Transform]:
    return [
        v2.PILToTensor(),
        v2.ToDtype(torch.float32, scale=False),
        v2.Normalize(mean=MEAN, std=STD),
    ]


class _Squeeze:
    """Resize the whole photo to ``size``×``size`` without keeping its aspect ratio."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.resize((self.size, self.size), Image.Resampling.BILINEAR, reducing_gap=3.0)


class TrainPreset:
    """Random crops, flips and TrivialAugment, for fine-tuning."""

    def __init__(self, *, crop_size: int, squeeze_size: int | None = None) -> None:
        steps: list[Any] = [_Squeeze(squeeze_size)] if squeeze_size else []
        steps += [
            v2.RandomResizedCrop(crop_size, scale=(0.25, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.TrivialAugmentWide(),
            *_to_network_input(),
        ]
        self.transforms = v2.Compose(steps)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.transforms(image)


class EvalPreset:
    """Resize the shorter side, centre-crop, normalise: what the model sees at inference."""

    def __init__(
        self, *, crop_size: int, resize_size: int, squeeze_size: int | None = None
    ) -> None:
        steps: list[Any] = [_Squeeze(squeeze_size)] if squeeze_size else []
        steps += [
            v2.Resize(resize_size, antialias=True),
            v2.CenterCrop(crop_size),
            *_to_network_input(),
        ]
        self.transforms = v2.Compose(steps)
        self.resize_size = resize_size
        self.crop_size = crop_size
        self.squeeze_size = squeeze_size

    def describe(self) -> str:
        """The pipeline in words, for the model card."""
        steps = ["RGB photo"]
        if self.squeeze_size:
            size = self.squeeze_size
            steps.append(f"squeeze to {size}×{size} (bilinear, aspect ratio not kept)")
        steps += [
            f"resize the shorter side to {self.resize_size} (bilinear, antialiased)",
            f"centre crop {self.crop_size}×{self.crop_size}",
            "(x - 127) / 128",
        ]
        return " → ".join(steps)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.transforms(image)

    @classmethod
    def from_card(cls, card: dict) -> EvalPreset:
        spec = card["preprocessing"]
        return cls(
            crop_size=spec["crop_size"],
            resize_size=spec["resize_size"],
            squeeze_size=spec.get("squeeze_size"),
        )
