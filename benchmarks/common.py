"""What every benchmark shares: the photos, one percentile, ports and report lines.

Servers, ports and the allocator probe come from ``tests.support.servers``, so that the suite
and the benchmarks start and check them one way.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
from collections.abc import Sequence
from pathlib import Path

from tests.support.servers import LoopbackHTTPServer, allocator, free_port, spawn_api

__all__ = [
    "FOOD_MNIST",
    "REPO",
    "LoopbackHTTPServer",
    "allocator",
    "free_port",
    "latency_line",
    "median_ratio",
    "peak_rss_mb",
    "percentile",
    "spawn_api",
    "val_photo_bytes",
    "val_photos",
]

REPO = Path(__file__).resolve().parents[1]
FOOD_MNIST = REPO.parent / "shared" / "data" / "food-mnist"


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (always one of the samples); nan when empty."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[min(len(ordered), max(rank, 1)) - 1]


def val_photos(count: int, data_dir: Path = FOOD_MNIST) -> list[Path]:
    """``count`` val photos of a Food-101-layout folder, spread evenly over ``meta/val.txt`` so
    that every dish appears."""
    entries = (data_dir / "meta" / "val.txt").read_text().split()
    stride = max(len(entries) // max(count, 1), 1)
    return [data_dir / "images" / f"{entry}.jpg" for entry in entries[::stride][:count]]


def val_photo_bytes(count: int, data_dir: Path = FOOD_MNIST) -> list[bytes]:
    """The bytes of :func:`val_photos`."""
    return [path.read_bytes() for path in val_photos(count, data_dir)]


def latency_line(name: str, samples: Sequence[float], *, scale: float = 1.0) -> str:
    """``name  p50 … p95 … p99 … ms`` of ``samples`` (multiplied by ``scale`` first)."""
    p50, p95, p99 = (percentile(samples, q) * scale for q in (50, 95, 99))
    return f"{name:<23}p50 {p50:8.2f} ms  p95 {p95:8.2f} ms  p99 {p99:8.2f} ms"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of paired ratios: the fair summary when both sides were timed in turn."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def count_parser(doc: str | None, flag: str, default: int, what: str) -> argparse.ArgumentParser:
    """A benchmark's parser with one count option, ``flag`` (``default``: ``what``)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument(flag, type=int, default=default, help=f"{what} (default {default})")
    return parser
