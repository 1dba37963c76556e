"""The benchmarks' shared helpers: one percentile, one photo picker."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.common import median_ratio, percentile, val_photos


@pytest.mark.parametrize(
    ("q", "expected"), [(0, 1.0), (1, 1.0), (50, 50.0), (90, 90.0), (99, 99.0), (100, 100.0)]
)
def test_percentile_is_the_nearest_rank(q: float, expected: float) -> None:
    samples = [float(n) for n in range(100, 0, -1)]  # order must not matter
    assert percentile(samples, q) == expected


def test_percentile_is_always_a_sample() -> None:
    assert percentile([3.0, 1.0], 50) == 1.0
    assert percentile([3.0, 1.0], 51) == 3.0
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_median_ratio_pairs_the_sides() -> None:
    assert median_ratio([2.0, 9.0, 3.0], [1.0, 3.0, 3.0]) == 2.0


def test_val_photos_are_spread_over_every_dish(tmp_path: Path) -> None:
    entries = [f"{dish}/{n}" for dish in ("pho", "ramen", "sushi") for n in range(4)]
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "val.txt").write_text("\n".join(entries))

    chosen = val_photos(3, tmp_path)

    assert [p.parent.name for p in chosen] == ["pho", "ramen", "sushi"]
    assert chosen[0] == tmp_path / "images" / "pho" / "0.jpg"
