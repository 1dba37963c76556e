"""The hand-written inference trunk against ``torch.compile`` with freezing, on the same photos.

    python3 -m benchmarks.bench_trunk_compile [--rounds 6] [--calls 20] [--batch-sizes 1,4]

Both sides run the default model's network from the same weights, in the same number format
(``INFERENCE_PRECISION``'s choice for this CPU) and thread count, on the same val photos put
through the model's own ``EvalPreset``:

- trunk: ``classifier.trunk.InferenceTrunk``, what DishLens runs (BatchNorm folded, ReLU6 and
  residual adds fused as oneDNN post-ops, weights packed per thread count and input shape);
- compiled: the plain EfficientNet (BatchNorm unfused) under ``torch.compile`` with Inductor's
  ``freezing`` on, PyTorch's own path for CPU inference (constant-folds the BatchNorms into the
  weights and packs them for oneDNN), one graph per batch size (``dynamic=False``).

The first compiled call of each batch size is the compile, timed apart, and the process's peak
memory is read before and after compiling. Then ``--rounds`` rounds: in each, ``--calls``
batches, each given to one side and then the other (which goes first alternates), and the ratio
of the two sides' p50s, compiled / trunk. This 2-core machine is shared and
its speed drifts by the minute, so the ratio of each round is the figure, not the times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from benchmarks.common import peak_rss_mb, percentile, val_photos
from classifier.artifact import load_artifact
from classifier.model import FoodNet
from classifier.predictor import DEFAULT_MODEL_DIR
from classifier.presets import EvalPreset
from classifier.trunk import InferenceTrunk, inference_dtype
from intake import image_from_bytes

Network = Callable[[torch.Tensor], torch.Tensor]


class PooledFeatures(nn.Module):
    """The plain network's pooled features, as the trunk computes them (float32 out)."""

    def __init__(self, model: FoodNet, dtype: torch.dtype) -> None:
        super().__init__()
        self.backbone = model.backbone.eval().to(dtype).to(memory_format=torch.channels_last)
        self.dtype = dtype

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.dtype).contiguous(memory_format=torch.channels_last)
        return self.backbone.extract_features(x).float().mean(dim=(2, 3))


def pooled_trunk(trunk: InferenceTrunk) -> Network:
    return lambda images: trunk.extract_features(images).mean(dim=(2, 3))


def photos_as_tensors(count: int, preset: EvalPreset) -> torch.Tensor:
    """``count`` val photos decoded as the API does and put through the model's preset."""
    return torch.stack([preset(image_from_bytes(p.read_bytes())) for p in val_photos(count)])


def timed_ms(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


def paired_p50s(
    trunk: Network, compiled: Network, batches: list[torch.Tensor]
) -> tuple[float, float]:
    """p50 of each side over ``batches``, the two sides called in turn on each batch (the one
    going first alternating), so that a busy spell on the machine hits both alike."""
    trunk_ms: list[float] = []
    compiled_ms: list[float] = []
    for number, batch in enumerate(batches):
        calls = [(trunk, trunk_ms), (compiled, compiled_ms)]
        for side, samples in calls if number % 2 == 0 else reversed(calls):
            samples.append(timed_ms(partial(side, batch)))
    return percentile(trunk_ms, 50), percentile(compiled_ms, 50)


def batches_of(photos: torch.Tensor, size: int, calls: int) -> list[torch.Tensor]:
    return [
        photos[[(start * size + i) % len(photos) for i in range(size)]] for start in range(calls)
    ]


def main(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    model, _, _, card = load_artifact(DEFAULT_MODEL_DIR)
    dtype = inference_dtype("auto")
    photos = photos_as_tensors(args.photos, EvalPreset.from_card(card))
    trunk_model = load_artifact(DEFAULT_MODEL_DIR)[0]  # a copy: InferenceTrunk takes it over
    trunk = pooled_trunk(InferenceTrunk(trunk_model.backbone.eval(), dtype))
    rss_before = peak_rss_mb()  # before the compiler is imported
    torch._inductor.config.freezing = True
    compiled = torch.compile(PooledFeatures(model, dtype), dynamic=False)
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    print(
        f"model {card['name']} at {photos.shape[-1]} px, {str(dtype).removeprefix('torch.')}, "
        f"{torch.get_num_threads()} thread(s), torch {torch.__version__}"
    )
    with torch.inference_mode():
        for size in sizes:
            first = photos[:size]
            trunk_first = timed_ms(partial(trunk, first))
            compile_ms = timed_ms(partial(compiled, first))
            gap = (compiled(first) - trunk(first)).abs().max().item()
            print(
                f"batch {size}: first call compiled {compile_ms / 1000:.1f} s (the compile), "
                f"trunk {trunk_first:.0f} ms (packing); max |compiled - trunk| {gap:.2e}"
            )
        print(
            f"peak RSS {rss_before:.0f} MB before importing the compiler, "
            f"{peak_rss_mb():.0f} MB after compiling"
        )
        for size in sizes:
            report_rounds(size, trunk, compiled, batches_of(photos, size, args.calls), args.rounds)
    return 0


def report_rounds(
    size: int,
    trunk: Network,
    compiled: Network,
    batches: list[torch.Tensor],
    rounds: int,
) -> None:
    ratios, trunk_p50s, compiled_p50s = [], [], []
    for _ in range(rounds):
        trunk_p50, compiled_p50 = paired_p50s(trunk, compiled, batches)
        trunk_p50s.append(trunk_p50)
        compiled_p50s.append(compiled_p50)
        ratios.append(compiled_p50 / trunk_p50)
    print(
        f"batch {size}, {rounds} rounds of {len(batches)} calls a side in turn: "
        f"compiled / trunk p50 median {statistics.median(ratios):.3f} (rounds: "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + f"); trunk p50 {min(trunk_p50s):.1f}-{max(trunk_p50s):.1f} ms, compiled "
        f"{min(compiled_p50s):.1f}-{max(compiled_p50s):.1f} ms"
    )


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds (default: 6)")
    parser.add_argument("--calls", type=int, default=20, help="calls a side a round (default: 20)")
    parser.add_argument("--batch-sizes", default="1,4", help="batch sizes (default: 1,4)")
    parser.add_argument("--photos", type=int, default=32, help="val photos (default: 32)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    return parser


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
