"""image_from_bytes: formats, modes, orientation, the fast path and every refusal."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image, ImageOps, JpegImagePlugin

import intake
from dishlens.settings import Settings
from intake.decode import MIN_SHORT_SIDE
from intake.errors import (
    CorruptImageError,
    ImageTooLargeError,
    TooManyPixelsError,
    UnsupportedFormatError,
)
from tests.intake import photos
from tests.intake.photos import BLUE, RED, encode


def _decode(data: bytes, settings: Settings | None = None) -> Image.Image:
    image = intake.image_from_bytes(data, filename="upload.bin", settings=settings)
    assert image.mode == "RGB"
    return image


def _raises(error: type[Exception], data: bytes, settings: Settings | None = None) -> Exception:
    with pytest.raises(error) as caught:
        intake.image_from_bytes(data, filename="upload.bin", settings=settings)
    assert type(caught.value) is error
    return caught.value


def _close(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


@pytest.fixture(scope="session")
def big_jpeg() -> bytes:
    return photos.big_jpeg()


# ---------------------------------------------------------------------------------------------
# FORMATS


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "HEIF"])
def test_supported_formats_decode(image_format: str) -> None:
    image = _decode(photos.photo(image_format))
    assert image.size == (64, 48)
    assert _close(image.getpixel((5, 24)), RED)
    assert _close(image.getpixel((58, 24)), BLUE)


def test_bytes_like_inputs_are_accepted() -> None:
    data = photos.photo("PNG")
    assert _decode(bytearray(data)).size == _decode(memoryview(data)).size == (64, 48)


def test_text_is_a_type_error_not_an_intake_error() -> None:
    with pytest.raises(TypeError):
        intake.image_from_bytes("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (photos.SVG, "svg"),
        (photos.PDF, "pdf"),
        (photos.HTML, "html"),
        (encode(photos.two_tone(), "TIFF"), "tiff"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(64), "avif"),
        (b"just some text, definitely not a photo", None),
        (encode(photos.two_tone(), "PPM"), None),
        (b"BM" + bytes(100), None),
    ],
    ids=["svg", "pdf", "html", "tiff", "avif", "text", "ppm", "bm-without-header"],
)
def test_other_formats_are_refused(data: bytes, detected: str | None) -> None:
    error = _raises(UnsupportedFormatError, data)
    assert error.detected == detected
    assert error.filename == "upload.bin"
    assert "JPEG, PNG, WebP, GIF, BMP or HEIC" in str(error)


def test_empty_file() -> None:
    assert _raises(CorruptImageError, b"").empty


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "GIF", "HEIF"])
def test_truncated_files_are_corrupt(image_format: str) -> None:
    data = photos.photo(image_format, size=(128, 96))
    error = _raises(CorruptImageError, data[: len(data) // 2])
    assert error.__cause__ is not None
    assert not error.empty


def test_damaged_jpeg_header_is_corrupt() -> None:
    data = bytearray(photos.photo("JPEG"))
    data[3:40] = b"\xff" * 37
    _raises(CorruptImageError, bytes(data))


# ---------------------------------------------------------------------------------------------
# CAPS


def test_byte_cap(settings: Settings) -> None:
    small = dataclasses.replace(settings, max_image_mb=1)
    data = photos.photo("PNG") + bytes(1024 * 1024)
    error = _raises(ImageTooLargeError, data, small)
    assert error.size == len(data) and error.limit_bytes == 1024 * 1024
    assert "1 MB" in str(error)


def test_pixel_cap_from_settings(settings: Settings) -> None:
    tiny = dataclasses.replace(settings, max_image_pixels=1000)
    error = _raises(TooManyPixelsError, photos.photo("PNG"), tiny)
    assert error.pixels == 64 * 48 and error.limit_pixels == 1000


def test_pixel_bomb_under_pillows_own_limit() -> None:
    error = _raises(TooManyPixelsError, photos.png_bomb(10_000, 6_000))
    assert error.pixels == 60_000_000 and error.limit_pixels == 50_000_000


def test_pixel_bomb_over_pillows_own_limit() -> None:
    data = photos.png_bomb(30_000, 30_000)
    assert len(data) < 200_000
    error = _raises(TooManyPixelsError, data)
    assert isinstance(error.__cause__, Image.DecompressionBombError)


# ---------------------------------------------------------------------------------------------
# SIZE AND THE JPEG FAST PATH


@pytest.fixture
def drafts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size each JPEG decode was drafted to, in order."""
    sizes: list[tuple[int, int]] = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = real_draft(self, mode, size)
        sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    return sizes


def test_twelve_megapixel_jpeg_is_decoded_in_draft_mode(
    big_jpeg: bytes, drafts: list[tuple[int, int]]
) -> None:
    image = _decode(big_jpeg)
    assert drafts == [(1000, 750)]  # libjpeg decoded at 1/4 scale, never at 4000×3000
    assert image.size == (683, MIN_SHORT_SIDE)


def test_progressive_jpeg_is_also_drafted(drafts: list[tuple[int, int]]) -> None:
    data = encode(photos.two_tone((2400, 1800)), "JPEG", quality=85, progressive=True)
    image = _decode(data)
    assert drafts == [(1200, 900)]
    assert image.size == (683, 512)
    assert _close(image.getpixel((10, 256)), RED)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1200, 900), (683, 512)),
        ((900, 1600), (512, 910)),
        ((3000, 600), (2560, 512)),
        ((600, 400), (600, 400)),
        ((300, 200), (300, 200)),
        ((1, 1), (1, 1)),
    ],
)
@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_shorter_side_is_shrunk_to_512_and_never_upscaled(
    image_format: str, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert _decode(photos.photo(image_format, size)).size == expected


# ---------------------------------------------------------------------------------------------
# ORIENTATION AND ANIMATION


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    data = photos.jpeg_with_orientation(orientation)
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    image = _decode(data)
    assert image.size == reference.size
    difference = np.abs(np.asarray(image, np.int16) - np.asarray(reference, np.int16))
    assert difference.max() <= 2


def test_out_of_range_orientation_is_ignored() -> None:
    assert _decode(photos.jpeg_with_orientation(42)).size == (64, 32)


def test_heic_rotation_is_applied_once() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(photos.two_tone((64, 32)), "HEIF", quality=90, exif=exif.tobytes())
    image = _decode(data)
    assert image.size == (32, 64)
    assert _close(image.getpixel((16, 5)), RED)  # left half of the original is now on top


def test_animated_gif_gives_its_first_frame() -> None:
    image = _decode(photos.animated_gif())
    assert _close(image.getpixel((16, 16)), RED, tolerance=5)


def test_animated_webp_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), RED), Image.new("RGB", (32, 32), BLUE)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert _close(_decode(data).getpixel((16, 16)), RED, tolerance=5)


# ---------------------------------------------------------------------------------------------
# MODES


def _transparent_corner(mode: str) -> Image.Image:
    image = photos.two_tone((32, 32)).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 8, 8))
    return image.convert(mode) if mode != "RGBA" else image


GREY_BLUE = (52, 52, 52)


@pytest.mark.parametrize(
    ("data", "opaque"),
    [
        (encode(_transparent_corner("RGBA"), "PNG"), BLUE),
        (encode(_transparent_corner("RGBA"), "WEBP", lossless=True), BLUE),
        (encode(_transparent_corner("LA"), "PNG"), GREY_BLUE),
    ],
    ids=["rgba-png", "rgba-webp", "la-png"],
)
def test_transparency_becomes_white(data: bytes, opaque: tuple[int, int, int]) -> None:
    image = _decode(data)
    assert image.getpixel((2, 2)) == (255, 255, 255)
    assert _close(image.getpixel((28, 20)), opaque)


@pytest.mark.parametrize("image_format", ["PNG", "GIF"])
def test_palette_transparency_becomes_white(image_format: str) -> None:
    palette = Image.new("P", (16, 16), 1)
    palette.putpalette([0, 0, 0, *RED] + [0] * 762)
    palette.paste(0, (0, 0, 4, 4))
    image = _decode(encode(palette, image_format, transparency=0))
    assert image.getpixel((1, 1)) == (255, 255, 255)
    assert image.getpixel((10, 10)) == RED


def test_cmyk_jpeg() -> None:
    image = _decode(encode(photos.two_tone().convert("CMYK"), "JPEG", quality=95))
    assert _close(image.getpixel((5, 24)), RED)


def test_sixteen_bit_grey_keeps_its_range() -> None:
    values = np.array([[0, 32768, 65535, 1000]], dtype=np.uint16)
    image = _decode(encode(Image.fromarray(values), "PNG"))
    assert [image.getpixel((x, 0))[0] for x in range(4)] == [0, 128, 255, 3]


@pytest.mark.parametrize("image_format", ["PNG", "BMP", "GIF"])
def test_one_bit_images(image_format: str) -> None:
    image = _decode(
        encode(photos.two_tone().convert("L").point(lambda v: 255 * (v > 60), "1"), image_format)
    )
    assert {image.getpixel((5, 24)), image.getpixel((58, 24))} <= {(0, 0, 0), (255, 255, 255)}


def test_greyscale_jpeg() -> None:
    image = _decode(encode(Image.new("L", (40, 30), 77), "JPEG"))
    assert _close(image.getpixel((20, 15)), (77, 77, 77), tolerance=2)


def test_the_size_check_alone_refuses_what_decoding_would() -> None:
    settings = Settings(max_image_mb=1)
    over = b"\xff\xd8\xff" + bytes(1024 * 1024)
    intake.check_photo_size(over[:-3], settings=settings)  # exactly the cap: accepted
    with pytest.raises(ImageTooLargeError):
        intake.check_photo_size(over, settings=settings)
    with pytest.raises(ImageTooLargeError):
        intake.image_from_bytes(over, settings=settings)
