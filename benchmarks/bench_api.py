"""Does grouping concurrent API requests into micro-batches pay on this CPU?

Simulates the API's model stage in-process (HTTP costs the same either way): ``--concurrency``
callers on one asyncio loop classify val photos over and over through

* :class:`api.runner.ModelRunner` as the API uses it: batch 1, W model threads × T PyTorch
  threads each (1×2: one forward at a time using both cores; 2×1: one single-threaded forward
  per core, the API's default);
* :class:`MicroBatcher`: the same threads, but each takes every request already waiting (up to
  ``max_batch``, after waiting at most ``--window-ms`` for more) into one ``predict_batch``.

Scenarios run round-robin ``--repeat`` times, so a busy spell on a shared machine hits them
alike; medians are printed. Keep batching only if it beats the runner.

    python benchmarks/bench_api.py --concurrency 8 --seconds 5 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import statistics
import sys
import threading
import time
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import intake  # noqa: E402
from api.runner import ModelRunner  # noqa: E402
from classifier import Classifier, Prediction, load_classifier  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "food-mnist"


class MicroBatcher:
    """``workers`` model threads (``torch_threads`` each) classifying queued requests in batches."""

    def __init__(
        self,
        classifier: Classifier,
        *,
        workers: int,
        torch_threads: int,
        max_batch: int,
        window_ms: float,
    ) -> None:
        self.classifier = classifier
        self.max_batch = max_batch
        self.window = window_ms / 1000
        self.torch_threads = torch_threads
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.sizes: list[int] = []
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for thread in self.threads:
            thread.start()

    async def predict(self, image: Image.Image) -> Prediction:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        self.queue.put((image, loop, future))
        return await future

    def close(self) -> None:
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()

    def _work(self) -> None:
        torch.set_num_threads(self.torch_threads)
        while (batch := self._next_batch()) is not None:
            results = self.classifier.predict_batch([image for image, _, _ in batch])
            self.sizes.append(len(batch))
            for (_, loop, future), result in zip(batch, results, strict=True):
                loop.call_soon_threadsafe(future.set_result, result)

    def _next_batch(self) -> list | None:
        first = self.queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.window
        while len(batch) < self.max_batch:
            try:
                item = self.queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if item is None:
                self.queue.put(None)
                break
            batch.append(item)
        return batch


async def drive(predict, images: list[Image.Image], concurrency: int, seconds: float) -> dict:
    """``concurrency`` callers classify ``images`` in turn for ``seconds``; rate and latency."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller(offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await predict(images[i % len(images)])
            latencies.append((time.perf_counter() - started) * 1000)
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {"rate": len(latencies) / elapsed, "p50": cuts[49], "p99": cuts[98]}


async def with_runner(classifier, images, *, spec, concurrency: int, seconds: float):
    runner = ModelRunner(**spec, queue_size=concurrency)
    runner.use(classifier)
    try:
        return await drive(lambda im: runner.predict(im, top_k=3), images, concurrency, seconds)
    finally:
        runner.close()


async def with_batcher(classifier, images, *, spec, concurrency: int, seconds: float):
    batcher = MicroBatcher(classifier, **spec)
    try:
        result = await drive(batcher.predict, images, concurrency, seconds)
    finally:
        batcher.close()
    result["mean_batch"] = statistics.fmean(batcher.sizes)
    return result


RUNNERS = [{"workers": 1, "torch_threads": 2}, {"workers": 2, "torch_threads": 1}]
BATCHERS = [
    {"workers": 1, "torch_threads": 2, "max_batch": 4, "window_ms": 5.0},
    {"workers": 2, "torch_threads": 1, "max_batch": 2, "window_ms": 0.0},
    {"workers": 2, "torch_threads": 1, "max_batch": 4, "window_ms": 0.0},
    {"workers": 2, "torch_threads": 1, "max_batch": 4, "window_ms": 5.0},
]


def scenarios(args: argparse.Namespace, classifier: Classifier, images: list[Image.Image]):
    """Name -> zero-argument function returning ``{"rate": …, …}``."""
    common = {"concurrency": args.concurrency, "seconds": args.seconds}
    table = {}
    for spec in RUNNERS:
        name = f"runner {spec['workers']}x{spec['torch_threads']}, batch 1"
        table[name] = partial(_run, with_runner, classifier, images, spec, common)
    for spec in BATCHERS:
        name = (
            f"batcher {spec['workers']}x{spec['torch_threads']}, <= {spec['max_batch']}, "
            f"{spec['window_ms']:g} ms"
        )
        table[name] = partial(_run, with_batcher, classifier, images, spec, common)
    return table


def _run(how, classifier, images, spec, common) -> dict:
    return asyncio.run(how(classifier, images, spec=spec, **common))


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=add_help)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="food-mnist folder")
    parser.add_argument("--photos", type=int, default=64, help="val photos to cycle through")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent callers")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per scenario run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over all scenarios")
    parser.add_argument("--model", default=None, help="model dir (default: bundled/MODEL_URI)")
    return parser


def main(args: argparse.Namespace) -> None:
    classifier = load_classifier(args.model)
    entries = (args.data / "meta" / "val.txt").read_text().split()[:: 750 // args.photos]
    images = [
        intake.image_from_bytes((args.data / "images" / f"{e}.jpg").read_bytes())
        for e in entries[: args.photos]
    ]
    table = scenarios(args, classifier, images)
    results: dict[str, list[dict]] = {name: [] for name in table}
    for _ in range(args.repeat):  # round-robin, so a busy spell hits every scenario alike
        for name, scenario in table.items():
            results[name].append(scenario())
    print(
        f"model {classifier.name}; {len(images)} photos; concurrency {args.concurrency}; "
        f"{args.repeat} x {args.seconds:g} s per scenario (median, min-max)"
    )
    for name, runs in results.items():
        print(f"{name:<34} {_summary(runs)}")


def _summary(runs: list[dict]) -> str:
    rates = [r["rate"] for r in runs]
    text = f"{statistics.median(rates):6.1f} img/s ({min(rates):.1f}-{max(rates):.1f})"
    if "p50" in runs[0]:
        p50 = statistics.median(r["p50"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        text += f"  p50 {p50:.0f} ms  p99 {p99:.0f} ms"
    if "mean_batch" in runs[0]:
        text += f"  mean batch {statistics.fmean(r['mean_batch'] for r in runs):.1f}"
    return text


if __name__ == "__main__":
    main(get_args_parser().parse_args())
