"""Image pipelines: one for training, one for everything else (evaluate, predict, app, API).

EfficientNet-Lite's ImageNet weights expect ``(x - 127) / 128`` on 0–255 pixels, so the
pipelines keep pixels as 0–255 floats and normalise with mean 127 and std 128.
"""

from __future__ import annotations

import io
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


class Shrink:
    """Make a photo look like the small training photos: ``size``×``size``, JPEG quality 75.

    The 64-px Food-101 copy was made by cutting the centre square out of each photo, resizing it
    bilinearly and saving it as a quality-75 JPEG (matched on the photos that are in both
    copies); the model learned those artefacts too. A photo already ``size``×``size`` is taken
    as it is.
    """

    JPEG_QUALITY = 75

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> Image.Image:
        if image.size == (self.size, self.size):
            return image
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        square = image.crop((left, top, left + side, top + side))
        small = square.resize((self.size, self.size), Image.Resampling.BILINEAR)
        encoded = io.BytesIO()
        small.save(encoded, "JPEG", quality=self.JPEG_QUALITY)
        return Image.open(encoded).convert("RGB")

    def describe(self) -> str:
        return (
            f"centre square → {self.size}×{self.size} (bilinear) → JPEG quality "
            f"{self.JPEG_QUALITY}, as the training photos were made"
        )


class TrainPreset:
    """Random crops, flips and TrivialAugment, for fine-tuning."""

    def __init__(self, *, crop_size: int, shrink_size: int | None = None) -> None:
        steps: list[Any] = [Shrink(shrink_size)] if shrink_size else []
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

    def __init__(self, *, crop_size: int, resize_size: int, shrink_size: int | None = None) -> None:
        self.shrink = Shrink(shrink_size) if shrink_size else None
        steps: list[Any] = [self.shrink] if self.shrink else []
        steps += [
            v2.Resize(resize_size, antialias=True),
            v2.CenterCrop(crop_size),
            *_to_network_input(),
        ]
        self.transforms = v2.Compose(steps)
        self.resize_size = resize_size
        self.crop_size = crop_size

    def describe(self) -> str:
        """The pipeline in words, for the model card."""
        steps = ["RGB photo"]
        if self.shrink:
            steps.append(self.shrink.describe())
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
            # Cards written before 2026-11-29 name this step squeeze_size.
            shrink_size=spec.get("shrink_size", spec.get("squeeze_size")),
        )
