"""The classifier's in-process throughput: the baseline the API under load is compared with.

A :class:`Setup` is a batch size and a number of concurrent callers; :func:`measure_in_process`
times decode + ``predict_batch`` run that way, decoding each photo from its bytes inside the
timed loop as the API must. :func:`scan` times every setup once; :func:`pick_finalists` and
:func:`time_finalists` time the best again beside a load (``benchmarks.loadgen``), and
``benchmarks.bench_allocator`` times fixed setups on two allocators.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from PIL import Image

import intake
from api.runner import cores_available
from classifier import Classifier

FINALISTS = 2  # setups timed again between the parts of a load


def decode(data: bytes) -> Image.Image:
    """Decode exactly as the API does."""
    return intake.image_from_bytes(data)


@dataclass(frozen=True)
class Setup:
    """One way to run the classifier in-process: a batch size and how many concurrent callers
    (more than one: one PyTorch thread each, as the API's runner does)."""

    batch_size: int
    callers: int

    @property
    def name(self) -> str:
        who = "1 caller" if self.callers == 1 else f"{self.callers} callers x 1 thread"
        return f"batch {self.batch_size}, {who}"

    @property
    def in_flight(self) -> int:
        """Photos in the classifier at once."""
        return self.batch_size * self.callers


def in_process_setups(batch_sizes: Sequence[int], callers: int) -> list[Setup]:
    """One caller with PyTorch's own thread count, and ``callers`` single-threaded callers,
    per batch size."""
    return [Setup(size, n) for size in batch_sizes for n in dict.fromkeys((1, callers))]


def measure_in_process(
    classifier: Classifier, photos: list[bytes], setup: Setup, seconds: float
) -> float:
    """Photos per second of decoding plus ``predict_batch`` run as ``setup`` says.

    Each photo is decoded from its bytes inside the timed loop, as the API must do (and as
    ``benchmarks.bench_classifier`` times ``predict``).
    """
    if setup.callers == 1:
        done, elapsed = _predict_for(classifier, photos, setup.batch_size, seconds)
        return done / elapsed
    with ThreadPoolExecutor(
        setup.callers, initializer=torch.set_num_threads, initargs=(1,)
    ) as pool:
        jobs = [
            pool.submit(_predict_for, classifier, photos, setup.batch_size, seconds)
            for _ in range(setup.callers)
        ]
        counts, times = zip(*(job.result() for job in jobs), strict=True)
    return sum(counts) / max(times)


def _predict_for(
    classifier: Classifier, photos: list[bytes], size: int, seconds: float
) -> tuple[int, float]:
    """Decode and classify ``photos`` in batches of ``size`` for ``seconds`` (after one batch
    to warm up); how many were done, in how many seconds."""
    classifier.predict_batch([decode(data) for data in photos[:size]])
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        batch = [decode(photos[(done + i) % len(photos)]) for i in range(size)]
        classifier.predict_batch(batch)
        done += size
    return done, time.perf_counter() - started


def scan(
    classifier: Classifier, photos: list[bytes], batch_sizes: Sequence[int], seconds: float
) -> dict[Setup, float]:
    """Photos/s of every setup: each batch size with one caller, and with one single-threaded
    caller per core."""
    setups = in_process_setups(batch_sizes, cores_available())
    return {s: measure_in_process(classifier, photos, s, seconds) for s in setups}


def pick_finalists(scanned: dict[Setup, float], concurrency: int) -> list[Setup]:
    """The scan's :data:`FINALISTS` best setups, and the best that holds no more photos at once
    than ``concurrency`` (for the second ratio) where it is not among them."""
    ranked = sorted(scanned, key=scanned.__getitem__, reverse=True)
    fits = [setup for setup in ranked if setup.in_flight <= concurrency][:1]
    return ranked[:FINALISTS] + [setup for setup in fits if setup not in ranked[:FINALISTS]]


def fastest(setups: Iterable[Setup], beside: dict[Setup, list[float]]) -> Setup:
    """The setup of ``setups`` with the most photos/s over its slices beside the load."""
    return max(setups, key=lambda setup: sum(beside[setup]))


def time_finalists(
    classifier: Classifier,
    photos: list[bytes],
    beside: dict[Setup, list[float]],
    seconds: float,
    *,
    reverse: bool,
) -> None:
    """Time each finalist once more for ``seconds`` and append its photos/s to ``beside``; in
    reverse order when asked, so that none always goes first."""
    order = list(beside)[::-1] if reverse else list(beside)
    for setup in order:
        beside[setup].append(measure_in_process(classifier, photos, setup, seconds))
