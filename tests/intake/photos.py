"""Photo bytes for the intake tests, all generated in memory."""

from __future__ import annotations

import functools
import io
import struct
import zlib

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

RED = (220, 30, 30)
BLUE = (30, 30, 220)


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def two_tone(size: tuple[int, int] = (64, 32), mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: rotations and flips are easy to tell apart."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image.convert(mode)


def photo(image_format: str, size: tuple[int, int] = (64, 48)) -> bytes:
    options = {"quality": 90} if image_format in ("JPEG", "WEBP", "HEIF") else {}
    return encode(two_tone(size), image_format, **options)


def jpeg_with_orientation(orientation: int, size: tuple[int, int] = (64, 32)) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(two_tone(size), "JPEG", quality=95, exif=exif.tobytes())


def big_jpeg(size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A 12-megapixel phone-sized JPEG with smooth content (quick to make)."""
    gradient = Image.linear_gradient("L").resize(size)
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_180), gradient))
    return encode(image, "JPEG", quality=85)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), RED), Image.new("RGB", (32, 32), BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


@functools.cache
def png_bomb(width: int, height: int) -> bytes:
    """A 1-bit PNG that claims ``width``×``height`` pixels but is only kilobytes long."""
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(6)
    rows_per_block = max(1, 1_000_000 // len(row))
    blocks, rest = divmod(height, rows_per_block)
    data = b"".join(compressor.compress(row * rows_per_block) for _ in range(blocks))
    data += compressor.compress(row * rest) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


@functools.cache
def scan_bomb(size: tuple[int, int] = (4000, 4000), extra_scans: int = 5000) -> bytes:
    """A progressive JPEG with ``extra_scans`` copies of its last scan's header (no data)
    before EOI: libjpeg decodes each one as a full pass over the image, filled with zeros."""
    data = encode(Image.new("RGB", size, RED), "JPEG", progressive=True, quality=80)
    last_scan = data.rindex(b"\xff\xda")
    header_length = struct.unpack_from(">H", data, last_scan + 2)[0]
    header = data[last_scan : last_scan + 2 + header_length]
    end = data.rindex(b"\xff\xd9")
    return data[:end] + header * extra_scans + data[end:]


def gzip_bomb(size: int) -> bytes:
    """A JPEG-looking body of ``size`` bytes, gzip-compressed to a tiny fraction of that."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(b"\xff\xd8\xff\xe0" + block[4:])]
    parts += [compressor.compress(block) for _ in range(size // len(block) - 1)]
    return b"".join(parts) + compressor.flush()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
HTML = b"<!DOCTYPE html><html><head><title>Not a photo</title></head><body>" + b"x" * 200
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"x" * 100
