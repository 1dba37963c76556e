"""What a photo may cost to decode, checked from its header bytes before any pixel is decoded.

Two bounds that the byte and pixel caps alone miss:

- Shape: a 1×100000 photo is 100,000 pixels, but resizing its short side to the model's 256 px
  makes a 256×25,600,000 image. Every side is at most :data:`MAX_SIDE` pixels and the long side
  at most :data:`MAX_ASPECT_RATIO` times the short one.
- JPEG scans: libjpeg walks every block of the image once per scan, and fills a scan whose data
  is missing with zeros, so a 10-byte scan header costs a pass over the whole image (about 3 ms
  at 16 megapixels). Repeating it 20,000 times makes a 200 KB file that decodes for over a
  minute. Encoders write 1 scan (baseline), 3 (non-interleaved) or about 10 (progressive;
  libjpeg's default script, mozjpeg's are similar), so :data:`MAX_JPEG_SCANS` leaves ample room
  while bounding the worst case to about a second at the default 50-megapixel cap.
"""

from __future__ import annotations

import re

from intake.errors import ImageShapeError, ImageTooComplexError

MAX_ASPECT_RATIO = 20
# Above the longest side any photo within the aspect and 50-megapixel caps can have.
MAX_SIDE = 32_000
MAX_JPEG_SCANS = 100

_SOS = 0xDA
_EOI = 0xD9
# Markers without a length field: TEM, RST0-7, SOI.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8), 0xD8})
# The next marker after entropy-coded data: 0xFF followed by anything but a stuffed zero, a
# restart marker or a fill byte (fill bytes before a marker are skipped by the match itself).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def check_shape(width: int, height: int) -> None:
    """Raises ImageShapeError for a side over :data:`MAX_SIDE` or an aspect ratio over
    :data:`MAX_ASPECT_RATIO`."""
    longest, shortest = max(width, height), max(min(width, height), 1)
    if longest > MAX_SIDE or longest > MAX_ASPECT_RATIO * shortest:
        raise ImageShapeError(width, height, MAX_ASPECT_RATIO, MAX_SIDE)


def check_jpeg_scans(data: bytes, limit: int = MAX_JPEG_SCANS) -> None:
    """Raises ImageTooComplexError when the JPEG in ``data`` has more than ``limit`` scans.

    Walks the marker segments (so an EXIF thumbnail's scan inside an APP segment is not
    counted) and skips each scan's entropy-coded data. A malformed stream stops the walk; the
    decoder then reports it as damaged.
    """
    scans = 0
    position, size = 2, len(data)  # after SOI
    while position + 1 < size and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == _EOI:
            return
        if marker in _STANDALONE:
            position += 2
            continue
        if position + 4 > size:
            return
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == _SOS:
            scans += 1
            if scans > limit:
                raise ImageTooComplexError(scans, limit)
            found = _NEXT_MARKER.search(data, position)
            position = found.start() if found else size
