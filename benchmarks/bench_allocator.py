"""Classifier throughput with glibc's malloc against tcmalloc, in two processes taking turns.

    python3 -m benchmarks.bench_allocator [--rounds 8] [--seconds 2] [--library NAME]

The allocator is fixed when a process starts (``LD_PRELOAD``), so the two sides cannot share
one process. Two child processes load the model, one on each allocator, then take turns: each
round times every setup once in each child, in alternating order, so that a slow spell on the
machine slows both sides. A setup is decode + ``predict_batch`` as ``benchmarks.in_process``
times it: one photo at a time on 2 threads (the app), batches of 4 on 2 single-threaded
callers (the API's workers), and one photo at a time on one thread.
Prints the median photos/s of each side, their ratio, and in how many rounds tcmalloc won.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

from benchmarks.common import REPO

TCMALLOC = "libtcmalloc_minimal.so.4"  # Debian's libtcmalloc-minimal4, as in the Dockerfile
GLIBC = "glibc malloc"  # as benchmarks.common.allocator() names it
# name -> (batch size, callers, PyTorch threads of a single caller)
SETUPS = {
    "app: batch 1, 2 threads": (1, 1, 2),
    "API: batch 4, 2 callers": (4, 2, 1),
    "batch 1, 1 thread": (1, 1, 1),
}


def serve_measurements() -> None:
    """Child: load the model, say which allocator this process runs on, then answer each
    ``<setup name>\\t<seconds>`` line on stdin with that setup's photos/s."""
    import torch

    from benchmarks.common import allocator, val_photo_bytes
    from benchmarks.in_process import Setup, measure_in_process
    from classifier import load_classifier

    classifier = load_classifier(None)
    photos = val_photo_bytes(100)
    print(json.dumps(allocator()), flush=True)
    for line in sys.stdin:
        name, seconds = line.rstrip("\n").split("\t")
        batch_size, callers, threads = SETUPS[name]
        torch.set_num_threads(threads)
        setup = Setup(batch_size, callers)
        rate = measure_in_process(classifier, photos, setup, float(seconds))
        print(json.dumps(rate), flush=True)


class Child:
    """A child process on ``preload`` (or the C library's malloc), ready to time setups."""

    def __init__(self, preload: str | None) -> None:
        env = {key: value for key, value in os.environ.items() if key != "LD_PRELOAD"}
        if preload:
            env["LD_PRELOAD"] = preload
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_allocator", "--child"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.allocator = self._answer()

    def measure(self, name: str, seconds: float) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{name}\t{seconds}\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)

    def _answer(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the measuring child process ended early")
        return json.loads(line)


def main(args: argparse.Namespace) -> int:
    if args.child:
        serve_measurements()
        return 0
    children = {GLIBC: Child(None), "tcmalloc": Child(args.library)}
    try:
        for side, child in children.items():
            if child.allocator != side:
                print(
                    f"bench_allocator: the {side} child runs on {child.allocator}; is "
                    f"{args.library} installed (Debian: libtcmalloc-minimal4)?"
                )
                return 2
        rates = run_rounds(children, args.rounds, args.seconds)
    finally:
        for child in children.values():
            child.close()
    print_summary(rates, args.rounds)
    return 0


def run_rounds(
    children: dict[str, Child], rounds: int, seconds: float
) -> dict[str, dict[str, list[float]]]:
    """setup -> side -> photos/s of each round; the sides go first in turn."""
    rates: dict[str, dict[str, list[float]]] = {name: {} for name in SETUPS}
    for number in range(rounds):
        order = list(children) if number % 2 == 0 else list(reversed(children))
        for name in SETUPS:
            for side in order:
                rates[name].setdefault(side, []).append(children[side].measure(name, seconds))
        print(
            f"round {number + 1}: "
            + "  ".join(
                f"{name.split(':')[0]} {by_side[GLIBC][-1]:.0f} / {by_side['tcmalloc'][-1]:.0f}"
                for name, by_side in rates.items()
            ),
            flush=True,
        )
    return rates


def print_summary(rates: dict[str, dict[str, list[float]]], rounds: int) -> None:
    print(f"photos/s, median of {rounds} rounds (decode + predict_batch, bundled model):")
    for name, by_side in rates.items():
        glibc, tcmalloc = by_side[GLIBC], by_side["tcmalloc"]
        won = sum(t > g for g, t in zip(glibc, tcmalloc, strict=True))
        before, after = statistics.median(glibc), statistics.median(tcmalloc)
        print(
            f"  {name:24} glibc {before:6.1f}  tcmalloc {after:6.1f}  ratio {after / before:.2f}"
            f"  (tcmalloc faster in {won} of {rounds} rounds)"
        )


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="rounds (default: 8)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds a setup (default: 2)")
    parser.add_argument("--library", default=TCMALLOC, help=f"allocator (default: {TCMALLOC})")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
