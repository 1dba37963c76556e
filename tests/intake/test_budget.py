"""Decode cost bounds: JPEG scan bombs and extreme shapes are refused before decoding."""

from __future__ import annotations

import dataclasses
import io
import time

import pytest
from PIL import Image

import intake
from dishlens.settings import load_settings
from intake.budget import MAX_ASPECT_RATIO, MAX_JPEG_SCANS, MAX_SIDE, check_jpeg_scans
from intake.errors import ImageShapeError, ImageTooComplexError, IntakeError
from tests.intake import photos


def test_scan_bomb_is_refused_quickly() -> None:
    # 5,000 empty scans over 16 megapixels: 8.6 s of libjpeg work when it was decoded.
    bomb = photos.scan_bomb()
    assert len(bomb) < 250_000
    started = time.monotonic()
    with pytest.raises(ImageTooComplexError) as caught:
        intake.image_from_bytes(bomb)
    assert time.monotonic() - started < 5.0  # generous: the refusal reads headers only
    assert caught.value.scans == MAX_JPEG_SCANS + 1
    assert "too long to open" in str(caught.value) and isinstance(caught.value, ValueError)


def test_scan_bomb_after_an_exif_thumbnail_is_still_counted() -> None:
    thumbnail = photos.encode(Image.new("RGB", (16, 16)), "JPEG")
    exif = b"Exif\x00\x00" + thumbnail
    segment = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    bomb = photos.scan_bomb((256, 256), MAX_JPEG_SCANS)
    with pytest.raises(ImageTooComplexError):
        intake.image_from_bytes(bomb[:2] + segment + bomb[2:])


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"progressive": True, "exif": b""}])
def test_ordinary_jpegs_pass_the_scan_count(options: dict) -> None:
    data = photos.encode(photos.two_tone((640, 480)), "JPEG", **options)
    check_jpeg_scans(data)
    assert intake.image_from_bytes(data).size == (640, 480)


def test_scan_limit_is_inclusive() -> None:
    progressive_scans = 10  # libjpeg's default script for colour
    at_limit = photos.scan_bomb((64, 64), MAX_JPEG_SCANS - progressive_scans)
    check_jpeg_scans(at_limit)
    with pytest.raises(ImageTooComplexError):
        check_jpeg_scans(photos.scan_bomb((64, 64), MAX_JPEG_SCANS - progressive_scans + 1))


def test_a_jpeg_photo_inside_an_app_segment_is_not_counted() -> None:
    inner = photos.scan_bomb((16, 16), 2 * MAX_JPEG_SCANS)
    segment = b"\xff\xe2" + (len(inner) + 2).to_bytes(2, "big") + inner
    outer = photos.encode(photos.two_tone((64, 48)), "JPEG")
    check_jpeg_scans(outer[:2] + segment + outer[2:])


@pytest.mark.parametrize(
    "size", [(1, 100_000), (100_000, 1), (20_000, 3), (MAX_ASPECT_RATIO + 1, 1), (10_799, 2)]
)
def test_extreme_aspect_ratios_are_refused(size: tuple[int, int]) -> None:
    data = photos.png_bomb(*size)
    with pytest.raises(ImageShapeError) as caught:
        intake.image_from_bytes(data)
    assert f"{size[0]}×{size[1]}" in str(caught.value)


def test_side_limit_holds_under_a_raised_pixel_cap() -> None:
    settings = dataclasses.replace(load_settings({}), max_image_pixels=200_000_000)
    with pytest.raises(ImageShapeError):
        intake.image_from_bytes(photos.png_bomb(MAX_SIDE + 1, 2_000), settings=settings)


def test_long_but_sane_photo_is_accepted() -> None:
    data = photos.png_bomb(MAX_ASPECT_RATIO * 50, 50)
    assert intake.image_from_bytes(data).size == (MAX_ASPECT_RATIO * 50, 50)


def test_shape_error_reaches_library_callers_as_intake_error() -> None:
    with pytest.raises(IntakeError):
        intake.image_from_bytes(photos.png_bomb(1, 100_000))


def test_png_bomb_fixture_is_a_png() -> None:
    with Image.open(io.BytesIO(photos.png_bomb(1, 100_000))) as image:
        assert image.size == (1, 100_000)
