"""Training on several processes or machines: what ``torchrun`` starts, one process per GPU.

    torchrun --standalone --nproc_per_node 2 -m classifier.train --data DATA --out OUT ...

Decisions:

- torchrun is recognised by the variables it sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
  ``LOCAL_WORLD_SIZE``). They are the launcher's protocol rather than settings, so they are read
  here, not in ``dishlens.settings``. Without them training is one process, no process group.
- Backend ``nccl`` when the processes use GPUs (each ``cuda:LOCAL_RANK``), else ``gloo``.
- The global batch stays ``--batch-size``: each of the W processes takes ``batch_size / W``
  photos of every step (W must divide it). Every process draws the same photos in the same
  order as one process would, from the same seeded generator (the same shuffle, or the same
  weighted draws with replacement for ``--extra-data``), and keeps its own interleaved share of
  each batch (:class:`RankShare`): the shares are disjoint and together are one process's batch,
  so the averaged gradient is one process's gradient up to the order of the float sums.
  torch's ``DistributedSampler`` is not used: it shuffles with its own ``seed + epoch``
  permutation (the batches would not be one process's), pads with repeated photos to divide
  evenly, and cannot share out weighted draws with replacement.
- A last batch smaller than ``--batch-size`` is shared as evenly as possible and each process
  scales its mean loss by n·W/N (:func:`for_gradient_average`), so DDP's average over processes
  is the mean over the batch's N photos. A last batch of fewer photos than processes is left
  out: a process without a photo cannot take part in the step.
- BatchNorm: with GPUs, every BatchNorm that learns its statistics becomes a ``SyncBatchNorm``,
  so its statistics are the global batch's, as in one process. torch's ``SyncBatchNorm`` takes
  GPU tensors only (torch 2.14 raises ``ValueError`` for CPU ones), so on CPU (gloo) each
  process normalises over its own share; a CPU run then matches one process exactly only where
  BatchNorm statistics are frozen (``--fix-res``, frozen blocks).
- Random augmentation, dropout and MixUp draw from each process's own generator (seeded
  ``seed + rank``), not the numbers one process would draw. Where a step draws nothing at
  random (``--fix-res`` on mirror-symmetric photos, ``--dropout 0``, every block frozen), W
  processes follow one process's trajectory up to float rounding; otherwise to within that
  noise.
- The data are read by one process of each machine at a time (:func:`take_turns`): an S3
  source is downloaded into the machine's one cache folder, which two processes must not
  write at once.
- Only rank 0 evaluates, writes checkpoints, the card and the artifact; the others wait at a
  barrier. On ``--resume`` every process reads the same checkpoint (OUT must be one folder that
  every machine sees), each restoring its own random state when the number of processes is
  unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, Sampler

from classifier.errors import DistributedSetupError

TORCHRUN_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
T = TypeVar("T")


@dataclass(frozen=True)
class Launch:
    """Where this process stands: rank ``rank`` of ``world_size`` processes, ``local_rank`` of
    the ``local_world_size`` on its machine; ``torchrun`` False for a plain one-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    torchrun: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that evaluates and writes."""
        return self.rank == 0


ONE_PROCESS = Launch()


def launch_from_env(environ: Mapping[str, str] | None = None) -> Launch:
    """The launch torchrun's variables describe, or :data:`ONE_PROCESS` without them.

    Raises:
        DistributedSetupError: some of the variables are missing, not whole numbers, or out
            of range.
    """
    environ = os.environ if environ is None else environ
    present = [name for name in TORCHRUN_VARIABLES if name in environ]
    if not present:
        return ONE_PROCESS
    missing = [name for name in TORCHRUN_VARIABLES if name not in environ]
    if missing:
        raise DistributedSetupError(
            f"{', '.join(present)} set without {', '.join(missing)}: start several training "
            "processes with torchrun, which sets all of them."
        )
    try:
        world_size, rank, local_rank = (int(environ[name]) for name in TORCHRUN_VARIABLES)
        local_world_size = int(environ.get("LOCAL_WORLD_SIZE", world_size))
    except ValueError:
        raise DistributedSetupError(
            "WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (torchrun sets them)."
        ) from None
    if world_size < 1 or not 0 <= rank < world_size or not 0 <= local_rank < local_world_size:
        raise DistributedSetupError(
            f"Rank {rank} (local rank {local_rank}) of {world_size} processes is not a valid "
            "place in a run: start the processes with torchrun."
        )
    return Launch(rank, world_size, local_rank, local_world_size, torchrun=True)


def per_rank_batch_size(batch_size: int, world_size: int) -> int:
    """Each process's share of a ``batch_size`` global batch.

    Raises:
        DistributedSetupError: ``world_size`` does not divide ``batch_size``.
    """
    if batch_size % world_size:
        raise DistributedSetupError(
            f"--batch-size {batch_size} is the global batch and must divide evenly among the "
            f"{world_size} processes: use a multiple of {world_size}."
        )
    return batch_size // world_size


def rank_device(name: str, launch: Launch) -> torch.device:
    """``auto``/``cuda`` -> this process's GPU, ``cuda:LOCAL_RANK`` (``auto`` -> CPU without
    GPUs); any other name as given.

    Raises:
        DistributedSetupError: more processes on this machine than it has GPUs.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type != "cuda" or device.index is not None:
        return device
    if launch.local_rank >= torch.cuda.device_count():
        raise DistributedSetupError(
            f"{launch.local_world_size} processes on this machine but "
            f"{torch.cuda.device_count()} GPUs: start at most one process per GPU "
            "(torchrun --nproc_per_node), or pass --device cpu."
        )
    device = torch.device("cuda", launch.local_rank)
    torch.cuda.set_device(device)
    return device


@contextmanager
def process_group(launch: Launch, device: torch.device) -> Iterator[None]:
    """Join the run's process group for the duration (nothing in a one-process run)."""
    if not launch.torchrun:
        yield
        return
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
        # Every process's last collective finished before any process tears its group down
        # (rank 0 can finish sending a broadcast before the others have received it).
        dist.barrier()
    finally:
        dist.destroy_process_group()


@contextmanager
def exit_on_bad_launch(program: str) -> Iterator[None]:
    """Around a command-line program: a bad launch ends it with one line and exit status 2."""
    try:
        yield
    except DistributedSetupError as error:
        print(f"{program}: {error}", file=sys.stderr)
        raise SystemExit(2) from None


# ---------------------------------------------------------------------------------------------
# DATA


class RankShare(Sampler[list[int]]):
    """This process's share of each global batch of ``sampler``'s draws.

    Every process iterates the same ``sampler`` (same generator, same state) and cuts its
    draws into global batches of ``batch_size``; process r keeps draws r, r+W, r+2W, ... of
    each. A last batch of fewer draws than processes is left out.
    """

    def __init__(self, sampler: Sampler[int], batch_size: int, launch: Launch) -> None:
        per_rank_batch_size(batch_size, launch.world_size)
        self.sampler = sampler
        self.batch_size = batch_size
        self.rank = launch.rank
        self.world_size = launch.world_size

    def __iter__(self) -> Iterator[list[int]]:
        for batch in BatchSampler(self.sampler, self.batch_size, drop_last=False):
            if len(batch) >= self.world_size:
                yield batch[self.rank :: self.world_size]

    def __len__(self) -> int:
        if not isinstance(self.sampler, Sized):
            raise TypeError("RankShare needs a sampler with a length")
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full + (rest >= self.world_size)


def take_turns(read: Callable[[], T], launch: Launch) -> T:
    """``read()`` in every process, one process of each machine at a time: reading an S3
    source downloads into one cache folder per machine, which two processes must not write at
    once."""
    if not launch.torchrun:
        return read()
    results: list[T] = []
    for turn in range(launch.local_world_size):
        if turn == launch.local_rank:
            results.append(read())
        dist.barrier()
    return results[0]


# ---------------------------------------------------------------------------------------------
# MODEL AND STEPS


def sync_learning_batchnorms(model: nn.Module) -> nn.Module:
    """Every BatchNorm that learns its statistics under ``model.train()`` becomes a
    ``SyncBatchNorm`` (same parameters and buffers). Frozen ones, which
    ``classifier.model.keep_in_eval_mode`` keeps in eval mode, stay: they read their running
    statistics and need no sync. Leaves ``model`` in training mode."""
    model.train()
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d) and child.training:
            setattr(model, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
        elif child.training:
            sync_learning_batchnorms(child)
    return model


def wrap(model: nn.Module, launch: Launch, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel under torchrun (BatchNorms synced on GPUs); as it
    is in one process."""
    if not launch.torchrun:
        return model
    if device.type == "cuda":
        sync_learning_batchnorms(model)
        return DistributedDataParallel(model, device_ids=[device])
    return DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (itself otherwise)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def for_gradient_average(loss: torch.Tensor, count: int, launch: Launch) -> torch.Tensor:
    """A process's mean ``loss`` over its ``count`` photos, scaled by count·W/N (N: the step's
    photos over all processes), so that DDP's mean of the processes' gradients is the gradient
    of the mean over all N photos. The loss itself in one process or for equal shares."""
    if not launch.torchrun:
        return loss
    total = int(sum_over_ranks([float(count)], launch, loss.device)[0])
    if count * launch.world_size == total:
        return loss
    return loss * (count * launch.world_size / total)


def sum_over_ranks(values: Sequence[float], launch: Launch, device: torch.device) -> list[float]:
    """Each value summed over every process (as they are in one process)."""
    if not launch.torchrun:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier(launch: Launch) -> None:
    """Wait until every process is here (nothing in one process)."""
    if launch.torchrun:
        dist.barrier()


def gather(value: T, launch: Launch) -> list[T]:
    """Every process's ``value``, in rank order (``[value]`` in one process)."""
    if not launch.torchrun:
        return [value]
    gathered: list[Any] = [None] * launch.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def from_main(value: T, launch: Launch) -> T:
    """Rank 0's ``value`` in every process."""
    if not launch.torchrun:
        return value
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def describe(launch: Launch, batch_size: int, device: torch.device) -> dict[str, Any]:
    """How a run was spread out, for the model card."""
    return {
        "processes": launch.world_size,
        "processes_per_machine": launch.local_world_size,
        "backend": "nccl" if device.type == "cuda" else "gloo",
        "batch_size_per_process": per_rank_batch_size(batch_size, launch.world_size),
        "batchnorm": "synced" if device.type == "cuda" else "per process",
    }
