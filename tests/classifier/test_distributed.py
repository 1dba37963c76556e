"""Training under torchrun (DistributedDataParallel, gloo on CPU) against one process.

The comparison runs in the one configuration where a training step draws nothing at random, so
that two processes must follow one process's trajectory and any difference is the order of the
float sums: the FixRes pipeline (BatchNorm statistics frozen, so per-process BatchNorm on CPU
changes nothing) on photos that are their own mirror image (its random flip changes nothing),
every block frozen (no drop-connect) and ``--dropout 0``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from classifier import distributed, train
from classifier.distributed import ONE_PROCESS, Launch, launch_from_env
from classifier.errors import DistributedSetupError
from classifier.model import build_model, freeze_trunk
from dishlens.errors import DishLensError
from tests.support.servers import REPO_ROOT

DISHES = ("apple_pie", "baklava", "bibimbap", "ramen")
NO_RANDOM_DRAWS = ("--fix-res", "--frozen-blocks", "16", "--dropout", "0")
# Two processes sum each gradient in another order than one process does: float32 rounding,
# ~1e-7 relative per sum. AdamW's step is lr · m/√v, insensitive to a gradient's scale, so
# rounding moves a weight by about lr times that relative error per step; over 10 steps
# (peak lr 5e-3 for the head) that is far below 1e-4 (measured: ~1e-6). A real fault moves
# weights by whole steps: both processes taking the same photos moved them by 2.5e-2, and a
# last batch shared unevenly without rescaling its loss by 4e-3.
WEIGHT_TOLERANCE = 1e-4


def striped_photo(dish: int, index: int, rng: np.random.Generator) -> Image.Image:
    """A 64-px photo of horizontal stripes, a colour and stripe width per dish: every row is
    one colour, so the photo is its own mirror image."""
    colours = np.array([[200, 60, 40], [60, 180, 60], [50, 70, 200], [200, 200, 60]])
    rows = np.arange(64)
    shade = ((rows // (4 + 3 * dish)) % 2) * 50 + rng.integers(-30, 30, size=64)
    column = colours[dish][None, :] + shade[:, None] + rng.integers(-20, 20, size=3) + index
    pixels = np.repeat(np.clip(column, 0, 255).astype(np.uint8)[:, None, :], 64, axis=1)
    return Image.fromarray(pixels)


def striped_dataset(root: Path) -> Path:
    """Four dishes in Food-101 layout: 35 training photos (9, 9, 9, 8: the last batch of 8 has
    3, which two processes share unevenly) and 4 validation photos per dish."""
    rng = np.random.default_rng(0)
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "classes.txt").write_text("\n".join(DISHES) + "\n")
    for split, count in (("train", 9), ("val", 4)):
        entries = []
        for dish, label in enumerate(DISHES):
            (root / "images" / label).mkdir(parents=True, exist_ok=True)
            for index in range(count - (split == "train" and dish == 3)):
                name = f"{split}{index}"
                # 4:4:4 chroma: subsampling averages pixel pairs and would break the symmetry.
                photo = striped_photo(dish, index, rng)
                photo.save(root / "images" / label / f"{name}.jpg", quality=90, subsampling=0)
                entries.append(f"{label}/{name}")
        (root / "meta" / f"{split}.txt").write_text("\n".join(entries) + "\n")
    return root


def cli_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--data",
        str(data),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--train-crop-size",
        "64",
        "--val-resize-size",
        "64",
        "--val-crop-size",
        "64",
        *NO_RANDOM_DRAWS,
        *extra,
    ]


def torchrun(args: list[str], processes: int = 2) -> str:
    """``torchrun --standalone --nproc_per_node N -m classifier.train ARGS``; its output."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", str(processes), "-m", "classifier.train", *args]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def one_process(args: list[str]) -> str:
    """The same CLI in this process, on one thread as each torchrun process is; its output."""
    printed, threads = io.StringIO(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(printed):
            train.main(train.get_args_parser().parse_args(args))
    finally:
        torch.set_num_threads(threads)
    return printed.getvalue()


def epoch_losses(output: str) -> dict[int, float]:
    """Epoch number -> training loss, from the lines the run printed (one per epoch)."""
    lines = re.findall(r"^epoch (\d+): loss ([\d.]+),", output, flags=re.MULTILINE)
    assert len(lines) == len({epoch for epoch, _ in lines}), "an epoch was reported twice"
    return {int(epoch): float(loss) for epoch, loss in lines}


def trained_weights(out: Path) -> dict[str, torch.Tensor]:
    """The float32 weights of the last checkpoint (the artifact's are float16)."""
    return torch.load(out / train.CHECKPOINT, weights_only=True)["model"]


def largest_difference(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    assert first.keys() == second.keys()
    return max(
        (first[k] - second[k]).abs().max().item() for k in first if first[k].is_floating_point()
    )


def card(out: Path) -> dict:
    return json.loads((out / "card.json").read_text())


@pytest.fixture(scope="module")
def striped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return striped_dataset(tmp_path_factory.mktemp("striped") / "data")


@dataclass(frozen=True)
class Run:
    out: Path
    output: str
    first_epoch_checkpoint: Path


@pytest.fixture(scope="module")
def one_process_run(striped: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The reference run, with a copy of its checkpoint after the first epoch: what an
    interrupted run leaves for --resume."""
    out = tmp_path_factory.mktemp("one") / "model"
    first = out.parent / "first-epoch.pt"
    save = train.save_checkpoint

    def save_and_keep_the_first(folder: Path, epoch: int, *args, **kwargs) -> None:
        save(folder, epoch, *args, **kwargs)
        if epoch == 0:
            shutil.copy(folder / train.CHECKPOINT, first)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "save_checkpoint", save_and_keep_the_first)
        return Run(out, one_process(cli_args(striped, out)), first)


def assert_same_training(out: Path, reference: Path) -> None:
    assert largest_difference(trained_weights(out), trained_weights(reference)) < WEIGHT_TOLERANCE
    metrics, expected = card(out)["metrics"], card(reference)["metrics"]
    # Weights 1e-4 apart cannot move a logit across another on 16 clearly striped photos.
    assert metrics["top1"] == expected["top1"] and metrics["top3"] == expected["top3"]
    assert metrics["ece"] == pytest.approx(expected["ece"], abs=1e-3)
    assert card(out)["temperature"] == pytest.approx(card(reference)["temperature"], rel=1e-2)


def test_two_processes_train_the_model_one_process_trains(
    striped: Path, one_process_run: Run, tmp_path: Path
) -> None:
    reference = one_process_run.out
    out = tmp_path / "two"
    output = torchrun(cli_args(striped, out))

    assert_same_training(out, reference)
    losses, expected = epoch_losses(output), epoch_losses(one_process_run.output)
    assert losses.keys() == expected.keys() == {1, 2}  # rank 0 alone reports, once an epoch
    # Printed with 3 decimals: equal up to one unit of rounding.
    assert all(losses[e] == pytest.approx(expected[e], abs=1.5e-3) for e in expected)
    assert card(out)["training"]["distributed"] == {
        "processes": 2,
        "processes_per_machine": 2,
        "backend": "gloo",
        "batch_size_per_process": 4,
        "batchnorm": "per process",
    }
    assert "distributed" not in card(reference)["training"]
    assert card(out)["training"]["recipe"]["batch_size"] == 8
    # Each process's own random state is kept for --resume (rank 0's is also "rng").
    saved = torch.load(out / train.CHECKPOINT, weights_only=True)
    first, second = (state["torch"] for state in saved["rng_of_ranks"])
    assert torch.equal(first, saved["rng"]["torch"]) and not torch.equal(first, second)


def test_two_processes_resume_a_checkpoint_where_it_stopped(
    striped: Path, one_process_run: Run, tmp_path: Path
) -> None:
    # One process trained the first epoch and stopped; two processes finish the run.
    out = tmp_path / "resumed"
    out.mkdir()
    shutil.copy(one_process_run.first_epoch_checkpoint, out / train.CHECKPOINT)

    output = torchrun(cli_args(striped, out, "--resume"))
    assert output.count("Resuming from") == 1 and set(epoch_losses(output)) == {2}
    assert_same_training(out, one_process_run.out)


def test_a_resumed_process_takes_its_own_random_state() -> None:
    saved = {"rng": {"of": 0}, "rng_of_ranks": [{"of": 0}, {"of": 1}]}
    assert train.own_rng(saved, launches(2)[1]) == {"of": 1}
    # Another number of processes, or a one-process checkpoint: rank 0's, in every process.
    assert train.own_rng(saved, launches(3)[2]) == {"of": 0}
    assert train.own_rng({"rng": {"of": 0}}, launches(2)[1]) == {"of": 0}


# ---------------------------------------------------------------------------------------------
# SHARING THE DATA


def launches(world_size: int) -> list[Launch]:
    return [Launch(rank, world_size, rank, world_size, torchrun=True) for rank in range(world_size)]


@pytest.mark.parametrize("world_size", [2, 4])
@pytest.mark.parametrize("weighted", [False, True], ids=["shuffled", "weighted draws"])
def test_each_process_takes_a_disjoint_share_of_one_process_batches(
    world_size: int, weighted: bool
) -> None:
    # 30 photos, batches of 8: the last batch has 6, shared 3/3 or 2/2/1/1.
    dataset = TensorDataset(torch.arange(30))
    args = argparse.Namespace(seed=3, batch_size=8, workers=0)
    weights = [1.0] * 20 + [5.0] * 10 if weighted else None
    single = train.make_loader(dataset, args, shuffle=True, sample_weights=weights)
    shared = [
        train.make_loader(dataset, args, shuffle=True, sample_weights=weights, launch=launch)
        for launch in launches(world_size)
    ]
    for _ in range(2):  # epochs: every process's generator moves on as one process's does
        expected = [batch.tolist() for (batch,) in single]
        shares = [[batch.tolist() for (batch,) in loader] for loader in shared]
        assert all(len(share) == len(expected) == len(single) for share in shares)
        for step, batch in enumerate(expected):
            parts = [share[step] for share in shares]
            # Process r holds draws r, r+W, ... of the step: disjoint, and together the batch.
            rebuilt = [parts[i % world_size][i // world_size] for i in range(len(batch))]
            assert rebuilt == batch and sum(map(len, parts)) == len(batch)
    if weighted:  # draws with replacement: the heavy photos come up more often
        drawn = Counter(i for share in shares for batch in share for i in batch)
        assert sum(drawn[i] for i in range(20, 30)) > sum(drawn[i] for i in range(20))


def test_a_last_batch_smaller_than_the_number_of_processes_is_left_out() -> None:
    dataset = TensorDataset(torch.arange(17))  # batches of 8: 8, 8 and 1
    args = argparse.Namespace(seed=0, batch_size=8, workers=0)
    loaders = [train.make_loader(dataset, args, shuffle=True, launch=x) for x in launches(2)]
    assert [len(loader) for loader in loaders] == [2, 2]
    assert [len(list(loader)) for loader in loaders] == [2, 2]
    drawn = [int(i) for loader in loaders for (batch,) in loader for i in batch]
    assert len(drawn) == len(set(drawn)) == 16


# ---------------------------------------------------------------------------------------------
# LAUNCHES AND ERRORS


def test_the_launch_comes_from_torchruns_variables() -> None:
    assert launch_from_env({}) == ONE_PROCESS and not ONE_PROCESS.torchrun
    variables = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert launch_from_env(variables) == Launch(3, 4, 1, 2, torchrun=True)
    assert not launch_from_env(variables).is_main


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"WORLD_SIZE": "2", "RANK": "0"}, "without LOCAL_RANK: start several"),
        ({"WORLD_SIZE": "two", "RANK": "0", "LOCAL_RANK": "0"}, "must be whole numbers"),
        ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, "Rank 2 .* of 2 processes"),
        ({"WORLD_SIZE": "0", "RANK": "0", "LOCAL_RANK": "0"}, "of 0 processes"),
    ],
)
def test_a_bad_launch_is_refused_by_name(variables: dict[str, str], message: str) -> None:
    with pytest.raises(DistributedSetupError, match=message) as refused:
        launch_from_env(variables)
    assert isinstance(refused.value, DishLensError) and isinstance(refused.value, ValueError)


def test_a_batch_the_processes_cannot_share_evenly_stops_the_cli(tmp_path: Path) -> None:
    with pytest.raises(DistributedSetupError, match=r"--batch-size 10 .* multiple of 4"):
        distributed.per_rank_batch_size(10, 4)
    # The real CLI, as torchrun would start one of 2 processes: one line, exit status 2,
    # before any data is read or any process group is joined.
    command = [sys.executable, "-m", "classifier.train", "--data", str(tmp_path / "absent")]
    command += ["--out", str(tmp_path / "out"), "--batch-size", "7"]
    env = dict(os.environ, WORLD_SIZE="2", RANK="0", LOCAL_RANK="0")
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "classifier.train: --batch-size 7 is the global batch and must divide evenly among "
        "the 2 processes: use a multiple of 2."
    ]
    assert not (tmp_path / "out").exists()


def test_more_processes_than_gpus_is_refused() -> None:
    crowded = Launch(0, 1, torch.cuda.device_count(), torch.cuda.device_count() + 1, True)
    with pytest.raises(DistributedSetupError, match="start at most one process per GPU"):
        distributed.rank_device("cuda", crowded)
    assert distributed.rank_device("cpu", crowded) == torch.device("cpu")


def test_on_gpus_only_batchnorms_that_learn_their_statistics_are_synced() -> None:
    model = build_model("efficientnet-lite0", 3, image_size=64)
    freeze_trunk(model, 3)
    before = {name: p for name, p in model.named_parameters()}
    distributed.sync_learning_batchnorms(model)
    frozen = [model.backbone._bn0, *(m for b in model.backbone._blocks[:3] for m in b.modules())]
    learning = [m for b in model.backbone._blocks[3:] for m in b.modules()]
    assert all(not isinstance(m, nn.SyncBatchNorm) for m in frozen)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in learning)
    assert not any(type(m) is nn.BatchNorm2d for m in learning)
    assert isinstance(model.backbone._bn1, nn.SyncBatchNorm)
    # The same parameters (the optimiser's), under the same names (checkpoints load as before).
    assert all(p is before[name] for name, p in model.named_parameters())
    assert before.keys() == dict(model.named_parameters()).keys()


def test_one_process_takes_the_loss_as_it_is() -> None:
    loss = torch.tensor(2.5, requires_grad=True)
    assert distributed.for_gradient_average(loss, 3, ONE_PROCESS) is loss
    assert distributed.sum_over_ranks([1.5, 3], ONE_PROCESS, torch.device("cpu")) == [1.5, 3]
