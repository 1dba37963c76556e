"""Does grouping concurrent API requests into micro-batches pay on this CPU?

Simulates the API's model stage in-process (no HTTP, which costs the same either way): a fixed
number of concurrent callers on one asyncio loop each classify val photos over and over,
through (a) :class:`api.runner.ModelRunner` as the API uses it (batch 1; 1 or 2 model threads)
and (b) a micro-batcher that gathers whatever requests are waiting (up to ``max_batch``,
waiting at most ``--window-ms`` for more) into one ``predict_batch`` call. Also prints plain
serial ``predict_batch`` throughput per batch size. Keep batching only if (b) beats (a).

    python benchmarks/bench_api.py --concurrency 8 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from PIL import Image  # noqa: E402

import intake  # noqa: E402
from api.runner import ModelRunner  # noqa: E402
from classifier import Classifier, Prediction, load_classifier  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "food-mnist"


class MicroBatcher:
    """Gathers concurrent ``predict`` calls into ``predict_batch`` calls on one model thread."""

    def __init__(self, classifier: Classifier, *, max_batch: int, window_ms: float) -> None:
        self.classifier = classifier
        self.max_batch = max_batch
        self.window = window_ms / 1000
        self.queue: asyncio.Queue[tuple[Image.Image, asyncio.Future[Prediction]]] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1)
        self.sizes: list[int] = []

    async def predict(self, image: Image.Image) -> Prediction:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((image, future))
        return await future

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.window
            while len(batch) < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0 and self.queue.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), max(timeout, 0)))
                except TimeoutError:
                    break
            images = [image for image, _ in batch]
            self.sizes.append(len(images))
            results = await loop.run_in_executor(
                self.executor, self.classifier.predict_batch, images
            )
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)


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


async def with_runner(classifier, images, *, workers: int, concurrency: int, seconds: float):
    runner = ModelRunner(workers=workers, queue_size=concurrency)
    runner.use(classifier)
    try:
        return await drive(lambda im: runner.predict(im, top_k=3), images, concurrency, seconds)
    finally:
        runner.close()


async def with_batcher(classifier, images, *, max_batch, window_ms, concurrency, seconds):
    batcher = MicroBatcher(classifier, max_batch=max_batch, window_ms=window_ms)
    server = asyncio.create_task(batcher.serve())
    try:
        result = await drive(batcher.predict, images, concurrency, seconds)
    finally:
        server.cancel()
        batcher.executor.shutdown()
    result["mean_batch"] = statistics.fmean(batcher.sizes)
    return result


def serial(classifier: Classifier, images: list[Image.Image], size: int, seconds: float) -> dict:
    classifier.predict_batch(images[:size])
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        classifier.predict_batch([images[(done + i) % len(images)] for i in range(size)])
        done += size
    return {"rate": done / (time.perf_counter() - started)}


def scenarios(args: argparse.Namespace, classifier: Classifier, images: list[Image.Image]):
    """Name -> zero-argument function returning ``{"rate": …, …}``."""
    common = {"concurrency": args.concurrency, "seconds": args.seconds}
    table = {
        f"serial predict_batch({size})": partial(serial, classifier, images, size, args.seconds)
        for size in (1, 2, 4, 8)
    }
    for workers in (1, 2):
        table[f"API runner, {workers} model thread(s)"] = partial(
            _run_runner, classifier, images, workers, common
        )
    for size in (2, 4, 8):
        table[f"micro-batch <= {size} ({args.window_ms:g} ms)"] = partial(
            _run_batcher, classifier, images, size, args.window_ms, common
        )
    return table


def _run_runner(classifier, images, workers, common) -> dict:
    return asyncio.run(with_runner(classifier, images, workers=workers, **common))


def _run_batcher(classifier, images, max_batch, window_ms, common) -> dict:
    return asyncio.run(
        with_batcher(classifier, images, max_batch=max_batch, window_ms=window_ms, **common)
    )


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=add_help)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="food-mnist folder")
    parser.add_argument("--photos", type=int, default=64, help="val photos to cycle through")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent callers")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per scenario run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over all scenarios")
    parser.add_argument("--window-ms", type=float, default=5.0, help="micro-batch wait")
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
