"""Image pipelines: one for training, one for everything else (evaluate, predict, app, API).

EfficientNet-Lite's ImageNet weights expect ``(x - 127) / 128`` on 0–255 pixels, so the
pipelines keep pixels as 0–255 floats and normalise with mean 127 and std 128.

Training uses torchvision's transforms v2. The inference pipeline does the same three steps
on PIL images with PIL and torch alone (the same calls v2 makes, so the same tensor, bit for
bit; a test compares them): importing torchvision also imports ``torch._dynamo`` and SymPy,
about 170 MB and 2 s that the app and the API would carry for nothing.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from PIL import Image

MEAN = (127.0, 127.0, 127.0)
STD = (128.0, 128.0, 128.0)


class Shrink:
    """Make a photo look like the small training photos: ``size``×``size``, JPEG quality 75.

    The 64-px Food-101 copy was made by cutting the centre square out of each photo, resizing it
    bicubically (Pillow's default) and saving it as a quality-75 JPEG: remade from the 224-px
    copies of the same photos, this matches the data set's files at 37.4 dB PSNR, against 32.3
    for bilinear and 30.4 for a squeeze. The model learned those artefacts too. A photo already
    ``size``×``size`` is taken as it is.
    """

    JPEG_QUALITY = 75

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> Image.Image:
        if image.size == (self.size, self.size):
            return image
        small = centre_square(image).resize((self.size, self.size), Image.Resampling.BICUBIC)
        return jpeg_round_trip(small, self.JPEG_QUALITY)

    def pipeline_text(self) -> str:
        return (
            f"centre square → {self.size}×{self.size} (bicubic) → JPEG quality "
            f"{self.JPEG_QUALITY}, as the training photos were made"
        )


class TrainPreset:
    """Random crops, flips and TrivialAugment, for fine-tuning."""

    def __init__(self, *, crop_size: int, shrink_size: int | None = None) -> None:
        from torchvision.transforms import v2  # here, so that inference never imports it

        steps: list[Any] = [Shrink(shrink_size)] if shrink_size else []
        steps += [
            v2.RandomResizedCrop(crop_size, scale=(0.25, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.TrivialAugmentWide(),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=False),
            v2.Normalize(mean=MEAN, std=STD),
        ]
        self.transforms = v2.Compose(steps)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.transforms(image)


class FixResPreset:
    """The evaluation pipeline plus a random mirror image: for fine-tuning at the resolution
    and framing the model is used at ("FixRes", Touvron et al., 2019)."""

    def __init__(self, preset: EvalPreset) -> None:
        self.preset = preset

    def __call__(self, image: Image.Image) -> torch.Tensor:
        pixels = self.preset(image)
        return pixels.flip(2) if torch.rand(()) < 0.5 else pixels


class EvalPreset:
    """Resize the shorter side, centre-crop, normalise: what the model sees at inference.

    The same as ``v2.Compose([v2.Resize(resize_size), v2.CenterCrop(crop_size),
    v2.PILToTensor(), v2.ToDtype(torch.float32), v2.Normalize(MEAN, STD)])`` on a PIL image.
    """

    def __init__(self, *, crop_size: int, resize_size: int, shrink_size: int | None = None) -> None:
        if crop_size > resize_size:
            raise ValueError(f"crop_size {crop_size} is larger than resize_size {resize_size}")
        self.shrink = Shrink(shrink_size) if shrink_size else None
        self.resize_size = resize_size
        self.crop_size = crop_size
        self._mean = torch.tensor(MEAN).view(3, 1, 1)
        self._std = torch.tensor(STD).view(3, 1, 1)

    def pipeline_text(self) -> str:
        """The pipeline in words, for the model card."""
        steps = ["RGB photo"]
        if self.shrink:
            steps.append(self.shrink.pipeline_text())
        steps += [
            f"resize the shorter side to {self.resize_size} (bilinear, antialiased)",
            f"centre crop {self.crop_size}×{self.crop_size}",
            "(x - 127) / 128",
        ]
        return " → ".join(steps)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if self.shrink:
            image = self.shrink(image)
        image = center_crop(resize_shorter_side(image, self.resize_size), self.crop_size)
        pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)
        return (pixels.float() - self._mean) / self._std

    @classmethod
    def from_card(cls, card: dict) -> EvalPreset:
        spec = card["preprocessing"]
        return cls(
            crop_size=spec["crop_size"],
            resize_size=spec["resize_size"],
            # Cards written before 2026-11-29 name this step squeeze_size.
            shrink_size=spec.get("shrink_size", spec.get("squeeze_size")),
        )


def resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    """Bilinear (antialiased) resize so the shorter side is ``size``, as ``v2.Resize(size)``."""
    width, height = image.size
    short, long = sorted((width, height))
    new_long = int(size * long / short)
    new_size = (size, new_long) if width <= height else (new_long, size)
    if new_size == image.size:
        return image
    return image.resize(new_size, Image.Resampling.BILINEAR)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """The central ``size``×``size`` square, placed as ``v2.CenterCrop(size)`` places it."""
    width, height = image.size
    top, left = round((height - size) / 2), round((width - size) / 2)
    return image.crop((left, top, left + size, top + size))


def centre_square(image: Image.Image) -> Image.Image:
    """The largest centred square (left and top margins rounded down)."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    """``image`` saved as a JPEG of ``quality`` and decoded again, artefacts and all."""
    encoded = io.BytesIO()
    image.save(encoded, "JPEG", quality=quality)
    return Image.open(encoded).convert("RGB")
