"""Decode photo bytes into a modest-size RGB image, safely and fast.

Steps: byte cap, format by magic bytes, JPEG scan count (:mod:`intake.budget`), open with that
one plugin, pixel cap and shape limits (before any pixel is decoded), JPEG draft mode (libjpeg
decodes at 1/2, 1/4 or 1/8 scale), flatten to RGB, shrink with ``reducing_gap`` so the shorter
side is :data:`MIN_SHORT_SIDE`, apply EXIF orientation.
A 12-megapixel phone JPEG is never decoded at full size.

This is the one place that turns Pillow and pillow-heif exceptions into
:class:`intake.errors.IntakeError` subclasses.
"""

from __future__ import annotations

import io

import pillow_heif
from PIL import ExifTags, Image, JpegImagePlugin

from intake.budget import check_jpeg_scans, check_shape
from intake.errors import (
    CorruptImageError,
    ImageTooLargeError,
    IntakeError,
    TooManyPixelsError,
    UnsupportedFormatError,
)
from intake.sniff import sniff_format, unsupported_format_name

# At least twice the largest input a bundled model takes (256 px for food10-lite0; the default
# food101-lite0 shrinks to 64 px, then 112), and enough to look sharp in the app.
MIN_SHORT_SIDE = 512
_BACKGROUND = (255, 255, 255)
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# pillow-heif applies HEIF's own rotation while decoding and resets EXIF orientation to 1.
pillow_heif.register_heif_opener()


def check_size(data: bytes, max_bytes: int) -> None:
    """Raises ImageTooLargeError when ``data`` is over ``max_bytes``."""
    if len(data) > max_bytes:
        raise ImageTooLargeError(max_bytes, len(data))


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, filename: str | None = None
) -> Image.Image:
    """Decode ``data`` to RGB, shorter side at most :data:`MIN_SHORT_SIDE` (never upscaled).

    Raises:
        IntakeError: a subclass per cause; nothing else escapes.
    """
    if not data:
        raise CorruptImageError(filename, empty=True)
    check_size(data, max_bytes)
    image_format = sniff_format(data)
    if image_format is None:
        raise UnsupportedFormatError(detected=unsupported_format_name(data), filename=filename)
    try:
        return _decode(data, image_format, max_pixels)
    except IntakeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as err:
        raise TooManyPixelsError(max_pixels) from err
    except Exception as err:  # Pillow's plugins raise many types on damaged input
        raise CorruptImageError(filename) from err


def _decode(data: bytes, image_format: str, max_pixels: int) -> Image.Image:
    if image_format == "JPEG":
        check_jpeg_scans(data)
    with Image.open(io.BytesIO(data), formats=[image_format]) as opened:
        width, height = opened.size
        if width * height > max_pixels:
            raise TooManyPixelsError(max_pixels, width * height)
        check_shape(width, height)
        if isinstance(opened, JpegImagePlugin.JpegImageFile):
            opened.draft("RGB", (MIN_SHORT_SIDE, MIN_SHORT_SIDE))
        opened.load()
        orientation = _orientation(opened)
        rgb = _to_rgb(opened)
    rgb = _shrink(rgb)
    if orientation in _ORIENTATION:
        rgb = rgb.transpose(_ORIENTATION[orientation])
    return rgb


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # damaged EXIF should not cost the user the photo; keep it upright
        return 1


def _to_rgb(image: Image.Image) -> Image.Image:
    """A new RGB image; transparency becomes white, 16-bit grey keeps its full range."""
    if image.mode in _SIXTEEN_BIT:
        # convert("L") would clip everything above 255; scale 0–65535 to 0–255 instead.
        image = image.point(lambda value: value / 256, "L")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _shrink(image: Image.Image) -> Image.Image:
    width, height = image.size
    short = min(width, height)
    if short <= MIN_SHORT_SIDE:
        return image
    scale = MIN_SHORT_SIDE / short
    size = (max(MIN_SHORT_SIDE, round(width * scale)), max(MIN_SHORT_SIDE, round(height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
