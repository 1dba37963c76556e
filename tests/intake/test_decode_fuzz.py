"""Random and mutated photo bytes: only IntakeError, and under a second each."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import intake
from tests.intake import photos

SEEDS = [
    photos.photo("JPEG", (40, 30)),
    photos.photo("PNG", (40, 30)),
    photos.photo("WEBP", (40, 30)),
    photos.photo("GIF", (40, 30)),
    photos.photo("BMP", (40, 30)),
    photos.photo("HEIF", (40, 30)),
    photos.jpeg_with_orientation(6),
    photos.animated_gif(),
]
MAGIC = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"BM\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00",
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        if action == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[position:]
            if not data:
                break
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[position : position + 4] = b"\xff\xff\xff\xff"
    return bytes(data)


inputs = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda magic, tail: magic + tail, st.sampled_from(MAGIC), st.binary(max_size=512)),
    mutated(),
)


@settings(
    max_examples=200,
    deadline=1000,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=inputs)
def test_only_intake_errors_escape(data: bytes) -> None:
    try:
        image = intake.image_from_bytes(data)
    except intake.IntakeError as error:
        event(type(error).__name__)  # shown by --hypothesis-show-statistics
        return
    except Exception as error:  # pragma: no cover - the assertion explains the failure
        pytest.fail(f"{type(error).__module__}.{type(error).__name__} escaped: {error}")
    event("decoded")
    assert image.mode == "RGB"
