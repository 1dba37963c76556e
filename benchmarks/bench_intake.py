"""Intake benchmark: phone JPEG to classifier input, and fetch+decode from a loopback server.

1. A generated 12-megapixel JPEG (4000×3000) to the 224-px classifier input: DishLens's path
   (``intake.image_from_bytes``, then resize the shorter side to 256 and centre-crop 224, as
   ``EvalPreset`` does) against a naive full decode, ``Image.open().convert("RGB")`` followed by
   ``resize((224, 224))``. Target: at least 3× faster.
2. ``intake.image_from_url`` of a ~2 MB JPEG from a threaded HTTP server on 127.0.0.1, with
   private addresses allowed (loopback only; nothing leaves the machine).

Run: ``python3 -m benchmarks.bench_intake`` (p50 of ``--repeats`` runs after one warm-up).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import numpy as np
from PIL import Image

import intake
from benchmarks.common import LoopbackHTTPServer, count_parser
from dishlens.settings import Settings, load_settings

RESIZE_SIZE = 256
CROP_SIZE = 224


def get_args_parser() -> argparse.ArgumentParser:
    return count_parser(__doc__, "--repeats", 15, "timed runs per case")


def photo_jpeg(size: tuple[int, int], quality: int, noise: float, seed: int = 0) -> bytes:
    """Smooth colour fields plus sensor-like noise, so the file size is phone-like."""
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 90 * np.sin(x / width * 6.3),
            128 + 90 * np.cos(y / height * 4.1),
            128 + 60 * np.sin((x + y) / (width + height) * 9.0),
        ],
        axis=-1,
    )
    pixels = np.clip(base + rng.normal(0, noise, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def classifier_input(image: Image.Image) -> Image.Image:
    """Shorter side to 256 (bilinear, as torchvision resizes PIL images), centre crop 224."""
    width, height = image.size
    scale = RESIZE_SIZE / min(width, height)
    resized = image.resize(
        (max(RESIZE_SIZE, round(width * scale)), max(RESIZE_SIZE, round(height * scale))),
        Image.Resampling.BILINEAR,
    )
    left = (resized.width - CROP_SIZE) // 2
    top = (resized.height - CROP_SIZE) // 2
    return resized.crop((left, top, left + CROP_SIZE, top + CROP_SIZE))


@dataclasses.dataclass(frozen=True)
class Timing:
    """p50 wall-clock and p50 CPU time (the fairer one on a busy, shared machine), in ms."""

    wall: float
    cpu: float

    def __str__(self) -> str:
        return f"{self.wall:7.1f} ms wall, {self.cpu:6.1f} ms CPU"

    def versus(self, faster: Timing) -> str:
        return f"(x{self.wall / faster.wall:.1f} wall, x{self.cpu / faster.cpu:.1f} CPU)"


def p50(run: Callable[[], object], repeats: int) -> Timing:
    run()  # warm-up: imports, plugin registration, first allocations
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timing(statistics.median(walls) * 1000, statistics.median(cpus) * 1000)


def bench_decode(repeats: int, settings: Settings) -> None:
    data = photo_jpeg((4000, 3000), quality=90, noise=8.0)
    fast = p50(lambda: classifier_input(intake.image_from_bytes(data, settings=settings)), repeats)
    naive = p50(
        lambda: Image.open(io.BytesIO(data)).convert("RGB").resize((CROP_SIZE, CROP_SIZE)),
        repeats,
    )
    full = p50(lambda: classifier_input(Image.open(io.BytesIO(data)).convert("RGB")), repeats)
    print(f"12 MP JPEG ({len(data) / 1e6:.1f} MB) -> 224 px classifier input, p50 of {repeats}:")
    print(f"  {'intake (draft, reducing_gap) + resize 256 + crop 224':54} {fast}")
    print(f"  {'naive open().convert().resize((224, 224))':54} {naive}  {naive.versus(fast)}")
    print(f"  {'naive full decode + resize 256 + crop 224':54} {full}  {full.versus(fast)}")
    speedup = min(naive.wall / fast.wall, naive.cpu / fast.cpu)
    verdict = "met" if speedup >= 3 else "NOT met"
    print(f"  speed-up vs naive (lower of wall and CPU): {speedup:.1f}x; target >= 3x {verdict}")


class _PhotoHandler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def bench_fetch(repeats: int, settings: Settings) -> None:
    _PhotoHandler.body = photo_jpeg((3264, 2448), quality=92, noise=6.5, seed=1)
    server = LoopbackHTTPServer(_PhotoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = server.url("/photo.jpg")
    loopback = dataclasses.replace(settings, allow_private_urls=True)
    try:
        fetched = p50(lambda: intake.image_from_url(url, settings=loopback), repeats)
    finally:
        server.shutdown()
        server.server_close()
    size_mb = len(_PhotoHandler.body) / 1e6
    print(
        f"fetch + decode of a {size_mb:.1f} MB 8 MP JPEG from 127.0.0.1, p50 of {repeats}: "
        f"{fetched}"
    )


def main(args: argparse.Namespace) -> None:
    settings = load_settings()
    bench_decode(args.repeats, settings)
    bench_fetch(args.repeats, settings)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
