"""Classifier speed, measured in one process on 2 threads against a ResNet-50 baseline.

    python3 -m benchmarks.bench_classifier [--model DIR] [--photos 60]

Prints p50/p95 of ``predict`` on validation photos (decode + preprocess + forward, from the
photo's bytes), ResNet-50 forward p50 (torchvision, random weights, batch 1) and their ratio
(target <= 0.3), batch-16 throughput against batch 1, model load time and peak RSS.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import torch

from benchmarks.common import peak_rss_mb, percentile, val_photo_bytes
from classifier import load_classifier
from intake import image_from_bytes

BLOCK = 10  # calls of each side in turn


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    classifier = load_classifier(args.model)
    load_s = time.perf_counter() - started
    photos = val_photo_bytes(args.photos)

    def predict_one(data: bytes) -> None:
        classifier.predict(image_from_bytes(data))

    for data in photos:  # warm-up: oneDNN kernels for every photo size, and the peak RSS
        predict_one(data)
    # Before the baseline exists: the classifier alone (it never imports torchvision).
    classifier_rss = peak_rss_mb()

    import torchvision

    resnet = torchvision.models.resnet50(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    predict_ms, resnet_ms = [], []
    with torch.inference_mode():
        timed(lambda: resnet(x), 3)
        # Alternating blocks, so that a busy spell on the machine slows both sides alike, yet
        # each side runs back to back as a service would (not evicted from cache every call).
        for start in range(0, len(photos), BLOCK):
            for data in photos[start : start + BLOCK]:
                predict_ms += timed(partial(predict_one, data), 1)
            resnet_ms += timed(lambda: resnet(x), BLOCK)

    images = [image_from_bytes(data) for data in photos[:32]]
    single = timed(lambda: [classifier.predict(i) for i in images[:16]], 3)
    batched = timed(lambda: classifier.predict_batch(images[:16]), 3)

    p50, p95, base = (
        percentile(predict_ms, 50),
        percentile(predict_ms, 95),
        percentile(resnet_ms, 50),
    )
    print(f"model                     {classifier.name} ({len(classifier.labels)} dishes)")
    print(f"threads                   {torch.get_num_threads()}")
    print(f"precision                 {str(classifier.dtype).removeprefix('torch.')}")
    print(
        f"predict p50 / p95         {p50:.1f} / {p95:.1f} ms  (decode + preprocess + forward, "
        f"{len(photos)} val photos)"
    )
    print(f"ResNet-50 forward p50     {base:.1f} ms  (baseline, same process, in turn)")
    print(f"ratio predict / ResNet-50 {p50 / base:.2f}  (target <= 0.30)")
    print(
        f"batch-16 throughput       {16000 / min(batched):.1f} photos/s vs batch-1 "
        f"{16000 / min(single):.1f} photos/s ({min(single) / min(batched):.2f}x)"
    )
    print(f"model load                {load_s:.2f} s")
    print(
        f"peak RSS                  {classifier_rss:.0f} MB before the baseline (target <= 700), "
        f"{peak_rss_mb():.0f} MB with ResNet-50 loaded"
    )


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: bundled)")
    parser.add_argument("--photos", type=int, default=60, help="val photos to time (default: 60)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
