"""How should the API run the model on this CPU: threads, and micro-batches or not?

Measured through HTTP, because that is where it matters: for each configuration it starts the
API (``create_app(max_batch=...)`` under uvicorn, on a free loopback port, ``TORCH_THREADS``
set as the configuration says), sends ``--requests`` val photos at ``--concurrency``, checks
every answer against the in-process label, and records photos/s and latency. Configurations
run round-robin ``--repeat`` times so a busy spell on a shared machine hits them alike; the
median (and the range) is printed.

    python3 -m benchmarks.bench_api --requests 400 --concurrency 8 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from api.runner import cores_available
from benchmarks import loadgen
from benchmarks.common import REPO, free_port, percentile
from classifier import load_classifier
from tests.support.servers import wait_api_ready

# name -> (TORCH_THREADS, max_batch); "2x1" is one single-threaded forward per core on 2 cores.
CONFIGURATIONS = {
    "1 thread x 2 torch threads, batch 1": (2, 1),
    "1 thread x 2 torch threads, batch <= 4": (2, 4),
    "per-core threads x 1, batch 1": (1, 1),
    "per-core threads x 1, batch <= 2": (1, 2),
    "per-core threads x 1, batch <= 4 (API default)": (1, 4),
    "per-core threads x 1, batch <= 8": (1, 8),
    "1 thread x 2 torch threads, batch <= 8": (2, 8),
}
SERVE = (
    "import sys, uvicorn; from api.main import create_app; "
    "uvicorn.run(create_app(max_batch=int(sys.argv[2])), host='127.0.0.1', "
    "port=int(sys.argv[1]), log_level='warning', access_log=False)"
)


@contextlib.contextmanager
def serve(torch_threads: int, max_batch: int) -> Iterator[str]:
    """The API with these settings on a free loopback port; yields its base URL."""
    port = free_port()
    env = dict(os.environ, TORCH_THREADS=str(torch_threads), ALLOW_PRIVATE_URLS="false")
    command = [sys.executable, "-c", SERVE, str(port), str(max_batch)]
    process = subprocess.Popen(command, cwd=REPO, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_api_ready(base_url, process, 120.0)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(base_url: str, probes: list[loadgen.Probe], concurrency: int) -> dict[str, float]:
    asyncio.run(
        loadgen.run_load(base_url, probes[:16], concurrency=concurrency, duration=60, timeout=60)
    )
    outcomes, seconds = asyncio.run(
        loadgen.run_load(base_url, probes, concurrency=concurrency, duration=600, timeout=60)
    )
    failed = [o.error for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} requests failed, e.g. {failed[0]}")
    latencies = [o.latency_ms for o in outcomes]
    return {
        "rate": len(outcomes) / seconds,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
    }


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        add_help=add_help,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=loadgen.DEFAULT_DATA, help="food-mnist")
    parser.add_argument("--photos", type=int, default=100, help="distinct val photos")
    parser.add_argument("--requests", type=int, default=400, help="photos per measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over all configurations")
    return parser


def main(args: argparse.Namespace) -> None:
    classifier = load_classifier()
    photos = loadgen.label_in_process(classifier, loadgen.select_photos(args.data, args.photos))
    probes = [loadgen.photo_probe(photos[i % len(photos)]) for i in range(args.requests)]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGURATIONS}
    for _ in range(args.repeat):
        for name, (torch_threads, max_batch) in CONFIGURATIONS.items():
            with serve(torch_threads, max_batch) as base_url:
                results[name].append(measure(base_url, probes, args.concurrency))
    print(
        f"model {classifier.name}; {args.requests} photos at concurrency {args.concurrency}, "
        f"{args.repeat} rounds; {cores_available()} cores; median (min-max)"
    )
    for name, runs in results.items():
        rates = [r["rate"] for r in runs]
        p50 = statistics.median(r["p50"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        print(
            f"{name:<48} {statistics.median(rates):5.1f} photos/s ({min(rates):.1f}-"
            f"{max(rates):.1f})  p50 {p50:.0f} ms  p99 {p99:.0f} ms"
        )


if __name__ == "__main__":
    main(get_args_parser().parse_args())
