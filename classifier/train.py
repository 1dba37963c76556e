"""Fine-tune EfficientNet-Lite on a Food-101-layout folder and write a model artifact.

    python -m classifier.train --data ../shared/data/food-mnist --out runs/food10
    python -m classifier.train --data DATA --extra-data s3://BUCKET/feedback/:3 --out runs/next

``--extra-data SOURCE[:WEIGHT]`` (repeatable) adds the photos of a feedback folder or prefix
(what the app's "Right dish?" store wrote; :func:`classifier.data.read_feedback`) to the training
split only: each of its photos is drawn WEIGHT times as often as a ``--data`` photo (a weighted
sampler, with replacement, as many draws an epoch as there are photos). Validation, calibration
and everything measured for promotion stay on ``--data``'s own splits, so feedback never grades
the model it trained. Photos of dishes the model does not have are counted and left out.

Each epoch ends with a checkpoint (``OUT/checkpoint.pt``); ``--resume`` continues from it. After
the last epoch the script calibrates on the validation split (temperature, thresholds), fits the
not-food detector on the training split and writes ``model.safetensors``, ``labels.json`` and
``card.json`` into ``OUT``.

Under ``torchrun`` the same command trains on several processes (GPUs or machines) with
DistributedDataParallel; ``--batch-size`` stays the global batch. How the work is shared, and
what matches one process: :mod:`classifier.distributed`.
"""

from __future__ import annotations

import argparse
import datetime
import pickle
import random
import time
from collections.abc import Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    WeightedRandomSampler,
)
from tqdm import tqdm

from classifier import distributed
from classifier.artifact import code_version, load_artifact, save_artifact
from classifier.calibrate import (
    CalibrationOptions,
    add_calibration_arguments,
    add_real_photos_argument,
    calibrate,
    collect_outputs,
    people_non_food_images,
    summary,
)
from classifier.cli import add_data_arguments, add_option
from classifier.data import (
    FeedbackDataset,
    FeedbackPhoto,
    FoodDataset,
    read_feedback,
    resolve_data_root,
)
from classifier.distributed import ONE_PROCESS, Launch
from classifier.errors import DistributedSetupError
from classifier.metrics import topk_accuracy
from classifier.model import (
    ARCHITECTURES,
    TRUNK_BLOCKS,
    FoodNet,
    build_model,
    freeze_batchnorm_statistics,
    freeze_trunk,
)
from classifier.presets import MEAN, STD, EvalPreset, FixResPreset, TrainPreset
from dishlens.labels import readable_label
from dishlens.settings import exit_on_bad_setting, load_settings

CHECKPOINT = "checkpoint.pt"


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state(loader: DataLoader) -> dict[str, Any]:
    """Every random state a resumed run needs to continue exactly where this one stopped, as
    tensors and plain values only, so that ``torch.load(weights_only=True)`` reads it back."""
    state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    kind, keys, position, has_gauss, cached_gaussian = state
    return {
        "torch": torch.get_rng_state(),
        "loader": loader.generator.get_state(),
        "python": random.getstate(),
        "numpy": [
            kind,
            torch.from_numpy(keys.astype(np.int64)),
            position,
            has_gauss,
            cached_gaussian,
        ],
    }


def restore_rng(state: dict[str, Any], loader: DataLoader) -> None:
    torch.set_rng_state(state["torch"])
    loader.generator.set_state(state["loader"])
    python_state = state["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    kind, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state(
        (kind, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian)
    )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint, read without running any code it may carry (``weights_only``)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise SystemExit(
            f"{path} is not a checkpoint this script wrote (it holds more than tensors and "
            "plain values), so it is not loaded."
        ) from error


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def initial_weights(source: Path) -> dict[str, torch.Tensor]:
    """The weights in a training checkpoint (``checkpoint.pt``) or a model directory."""
    if source.is_dir():
        model, *_ = load_artifact(source)
        return model.state_dict()
    return load_checkpoint(source)["model"]


def eval_preset(args: argparse.Namespace) -> EvalPreset:
    return EvalPreset(
        crop_size=args.val_crop_size,
        resize_size=args.val_resize_size,
        shrink_size=args.shrink_size,
    )


def make_loader(
    dataset: Dataset,
    args: argparse.Namespace,
    *,
    shuffle: bool,
    sample_weights: list[float] | None = None,
    launch: Launch = ONE_PROCESS,
) -> DataLoader:
    """A seeded loader; with ``sample_weights``, photos are drawn in proportion to them (with
    replacement, ``len(dataset)`` draws an epoch) from the same generator. Under torchrun,
    this process's share of each global batch (:class:`classifier.distributed.RankShare`)."""
    generator = torch.Generator().manual_seed(args.seed)
    sampler: Sampler[int] | None = None
    if sample_weights is not None:
        sampler = WeightedRandomSampler(
            sample_weights, len(sample_weights), replacement=True, generator=generator
        )
    if launch.torchrun:
        return shared_loader(dataset, args, sampler, generator, launch, shuffle=shuffle)
    return DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=generator,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        worker_init_fn=lambda worker: set_seed(args.seed + worker),
    )


def shared_loader(
    dataset: Dataset,
    args: argparse.Namespace,
    sampler: Sampler[int] | None,
    generator: torch.Generator,
    launch: Launch,
    *,
    shuffle: bool,
) -> DataLoader:
    """:func:`make_loader` under torchrun: the draws one process makes (the same sampler on
    the same generator, which the loader also advances as in one process), this process's
    share of each batch, and data-loading workers seeded apart from other processes'."""
    if sampler is None and shuffle:
        sampler = RandomSampler(cast(Sized, dataset), generator=generator)
    if sampler is None:
        sampler = SequentialSampler(cast(Sized, dataset))
    return DataLoader(
        dataset,
        batch_sampler=distributed.RankShare(sampler, args.batch_size, launch),
        generator=generator,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        worker_init_fn=lambda worker: set_seed(args.seed + launch.rank * args.workers + worker),
    )


def batch_mixing(args: argparse.Namespace, num_classes: int):
    """MixUp and/or CutMix on each training batch, as torchvision's references apply them (one
    of the two chosen at random per batch); ``None`` when both are off."""
    from torchvision.transforms import v2

    mixes = []
    if args.mixup_alpha > 0:
        mixes.append(v2.MixUp(alpha=args.mixup_alpha, num_classes=num_classes))
    if args.cutmix_alpha > 0:
        mixes.append(v2.CutMix(alpha=args.cutmix_alpha, num_classes=num_classes))
    return v2.RandomChoice(mixes) if mixes else None


def train_one_epoch(
    model, criterion, optimizer, scheduler, loader, device, epoch, args, launch=ONE_PROCESS
) -> float:
    """One pass over ``loader``; the mean training loss (over every process's photos)."""
    model.train()
    total_loss, seen = 0.0, 0
    mix = batch_mixing(args, cast(FoodNet, distributed.unwrap(model)).head.out_features)
    desc = f"epoch {epoch + 1}/{args.epochs}"
    progress = tqdm(loader, desc=desc, unit="batch", disable=not launch.is_main)
    for images, targets in progress:
        if mix is not None:
            images, targets = mix(images, targets)
        images = images.to(device, memory_format=torch.channels_last, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        loss = criterion(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        distributed.for_gradient_average(loss, len(targets), launch).backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.item() * len(targets)
        seen += len(targets)
        progress.set_postfix(loss=f"{total_loss / seen:.3f}")
    loss_sum, photos = distributed.sum_over_ranks([total_loss, seen], launch, device)
    return loss_sum / photos


def extra_source(text: str) -> str:
    """An argparse type: ``SOURCE[:WEIGHT]`` with a positive weight (kept as text, so that the
    checkpoint's copy of the arguments stays plain values)."""
    split_source_weight(text)
    return text


def split_source_weight(text: str) -> tuple[str, float]:
    """``"s3://b/fb/:2.5"`` -> ``("s3://b/fb/", 2.5)``; no number after the last ``:`` -> 1."""
    head, _, tail = text.rpartition(":")
    try:
        weight = float(tail)
    except ValueError:
        return text, 1.0
    if not head:
        raise argparse.ArgumentTypeError(f"{text!r} names no source before its weight")
    if not (weight > 0 and np.isfinite(weight)):
        raise argparse.ArgumentTypeError(f"the weight of {head!r} must be a positive number")
    return head, weight


@dataclass(frozen=True)
class TrainingData:
    """What training reads: ``--data``'s folder and dishes, every training photo with its
    sampling weight (None without ``--extra-data``), what each source gave (for the card) and
    the feedback photos people called not food (for calibration)."""

    root: Path
    classes: list[str]
    train_set: Dataset
    sample_weights: list[float] | None
    sources: list[dict[str, Any]]
    not_food: list[FeedbackPhoto]


def training_sources(
    args: argparse.Namespace, train_set: FoodDataset, transform: Any, cache_dir: Path
) -> tuple[Dataset, list[float] | None, list[dict[str, Any]], list[FeedbackPhoto]]:
    """The training photos of ``--data`` and every ``--extra-data`` source, each photo's
    sampling weight (None without extra sources), what each source gave, for the card, and
    the sources' photos people called not food."""
    sources: list[dict[str, Any]] = [
        {
            "source": str(args.data),
            "kind": "food-101 layout",
            "weight": 1.0,
            "images": len(train_set),
        }
    ]
    parts: list[Dataset] = [train_set]
    weights = [1.0] * len(train_set)
    not_food: list[FeedbackPhoto] = []
    for text in args.extra_data:
        uri, weight = split_source_weight(text)
        feedback = read_feedback(uri, cache_dir)
        not_food += feedback.not_food
        photos = FeedbackDataset(feedback.dishes, train_set.classes, transform)
        sources.append(
            {
                "source": uri,
                "kind": "feedback",
                "weight": weight,
                "images": len(photos),
                "unknown_dish_photos": photos.unknown,
                **feedback.summary(),
            }
        )
        parts.append(photos)
        weights += [weight] * len(photos)
    if len(parts) == 1:
        return train_set, None, sources, not_food
    return ConcatDataset(parts), weights, sources, not_food


def build_card(args, classes, train_set, calibration_card, sources=None) -> dict[str, Any]:
    return {
        "name": args.name,
        "version": datetime.date.today().isoformat(),
        "architecture": args.arch,
        "num_classes": len(classes),
        "input_size": args.val_crop_size,
        "test_time_flip": args.test_time_flip,
        "preprocessing": {
            "shrink_size": args.shrink_size,
            "resize_size": args.val_resize_size,
            "crop_size": args.val_crop_size,
            "pipeline": eval_preset(args).pipeline_text(),
            "normalisation": "(x - 127) / 128 on 0-255 RGB pixels",
            "mean": list(MEAN),
            "std": list(STD),
        },
        "training": {
            "data": str(args.data),
            "split": "train",
            "images": len(train_set),
            "sources": sources or [],
            "recipe": {k: v for k, v in vars(args).items() if k not in {"data", "out"}},
        },
        **calibration_card,
        "licence": "Weights fine-tuned from EfficientNet-Lite ImageNet weights (Apache-2.0) on "
        "Food-101 photos (research use; photos belong to their owners).",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
    }


def finalize(model, args, data: TrainingData, device, launch=ONE_PROCESS) -> dict[str, Any]:
    """Calibrate (temperature, not-food detectors, thresholds) and write the artifact."""
    options = CalibrationOptions.from_args(args)
    real_photos = Path(args.real_photos) if args.real_photos else None
    result = calibrate(
        model,
        data.classes,
        data.root,
        eval_preset(args),
        options,
        device,
        real_photos=real_photos,
        people_non_food=people_non_food_images(data.not_food),
    )
    card = build_card(args, data.classes, data.train_set, result.card, data.sources)
    if launch.torchrun:
        card["training"]["distributed"] = distributed.describe(launch, args.batch_size, device)
    labels = {label: readable_label(label) for label in data.classes}
    model.cpu()
    return save_artifact(Path(args.out), model, result.scorer, labels, card)


def train_transform(args: argparse.Namespace) -> FixResPreset | TrainPreset:
    if args.fix_res:
        return FixResPreset(eval_preset(args))
    return TrainPreset(crop_size=args.train_crop_size, shrink_size=args.shrink_size)


def prepare_model(args: argparse.Namespace, num_classes: int, device: torch.device) -> FoodNet:
    """The network to train: ImageNet weights or ``--init-from``'s, the frozen part frozen."""
    model = build_model(args.arch, num_classes, image_size=args.val_crop_size)
    model.dropout.p = args.dropout
    if args.init_from:
        model.load_state_dict(initial_weights(Path(args.init_from)))
    freeze_trunk(model, args.frozen_blocks)
    if args.fix_res:
        freeze_batchnorm_statistics(model)
    model.test_time_flip = args.test_time_flip
    # torch's stubs have no overload of Module.to with both a device and a memory format.
    model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def make_optimizer(
    model: FoodNet, args: argparse.Namespace, steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.OneCycleLR]:
    """AdamW with the head at ``--head-lr-scale`` times the trunk's rate, on a one-cycle
    schedule of ``steps`` steps."""
    head_params = list(model.head.parameters())
    trunk_params = [
        p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")
    ]
    rates = [args.lr, args.lr * args.head_lr_scale]
    optimizer = torch.optim.AdamW(
        [{"params": trunk_params, "lr": rates[0]}, {"params": head_params, "lr": rates[1]}],
        weight_decay=args.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=rates, total_steps=steps, pct_start=args.warmup_fraction
    )
    return optimizer, scheduler


def resume(
    out: Path,
    args: argparse.Namespace,
    model,
    optimizer,
    scheduler,
    loader,
    launch: Launch = ONE_PROCESS,
) -> int:
    """With ``--resume`` and a checkpoint in ``out``: restore everything from it and return the
    epoch to start at; else 0. Under torchrun every process reads the same checkpoint.

    Raises:
        DistributedSetupError: some processes see the checkpoint and others do not.
    """
    found = distributed.gather(bool(args.resume and (out / CHECKPOINT).is_file()), launch)
    if len(set(found)) > 1:
        raise DistributedSetupError(
            f"Only some of the training processes see {out / CHECKPOINT}: on several machines, "
            "--out must be one folder that all of them read and write."
        )
    if not found[0]:
        return 0
    checkpoint = load_checkpoint(out / CHECKPOINT)
    if checkpoint["args"]["epochs"] != args.epochs:
        raise SystemExit(
            f"{out / CHECKPOINT} belongs to a {checkpoint['args']['epochs']}-epoch run; "
            "--resume finishes that run. To train further with a new schedule, use "
            f"--init-from {out / CHECKPOINT} and a new --out."
        )
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["lr_scheduler"])
    restore_rng(own_rng(checkpoint, launch), loader)
    start_epoch = checkpoint["epoch"] + 1
    if launch.is_main:
        print(f"Resuming from {out / CHECKPOINT} at epoch {start_epoch + 1}.")
    return start_epoch


def own_rng(checkpoint: dict[str, Any], launch: Launch) -> dict[str, Any]:
    """This process's random state in ``checkpoint``: its own when the checkpoint comes from a
    run with as many processes, else rank 0's."""
    of_ranks = checkpoint.get("rng_of_ranks") or []
    return of_ranks[launch.rank] if len(of_ranks) == launch.world_size else checkpoint["rng"]


def save_checkpoint(
    out: Path,
    epoch: int,
    args,
    classes,
    model,
    optimizer,
    scheduler,
    loader,
    rng_of_ranks: list[dict[str, Any]] | None = None,
):
    """Everything ``--resume`` needs; ``rng_of_ranks``: every process's random state under
    torchrun (rank 0's is also ``rng``)."""
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "rng": rng_state(loader),
        "args": vars(args),
        "classes": classes,
    }
    if rng_of_ranks is not None:
        checkpoint["rng_of_ranks"] = rng_of_ranks
    torch.save(checkpoint, out / CHECKPOINT)


def report_epoch(epoch: int, loss: float, logits, targets, args, started: float) -> None:
    print(
        f"epoch {epoch + 1}: loss {loss:.3f}, {args.val_split} "
        f"top-1 {topk_accuracy(logits, targets, 1):.3f}, "
        f"top-3 {topk_accuracy(logits, targets, 3):.3f}"
        f" ({time.perf_counter() - started:.0f} s)",
        flush=True,
    )


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Train, calibrate and write the artifact; the card. Under torchrun every process runs
    this and returns the card rank 0 wrote.

    Raises:
        DistributedSetupError: a torchrun launch this run cannot use.
    """
    launch = distributed.launch_from_env()
    distributed.per_rank_batch_size(args.batch_size, launch.world_size)
    if launch.torchrun:
        device = distributed.rank_device(args.device, launch)
    else:
        device = pick_device(args.device)
    with distributed.process_group(launch, device):
        return run_training(args, launch, device)


def read_training_data(args: argparse.Namespace, transform: Any, cache_dir: Path) -> TrainingData:
    """``--data``'s folder and training photos, and every ``--extra-data`` source."""
    root = resolve_data_root(args.data, cache_dir)
    food_train = FoodDataset(root, "train", transform, limit_per_class=args.limit_per_class)
    train_set, sample_weights, sources, not_food = training_sources(
        args, food_train, transform, cache_dir
    )
    return TrainingData(root, food_train.classes, train_set, sample_weights, sources, not_food)


def run_training(args: argparse.Namespace, launch: Launch, device: torch.device) -> dict[str, Any]:
    """:func:`main` in one process of the run: every process trains its share, rank 0 alone
    evaluates and writes."""
    set_seed(args.seed + launch.rank)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = load_settings().model_cache_dir
    transform = train_transform(args)
    data = distributed.take_turns(lambda: read_training_data(args, transform, cache_dir), launch)
    model = prepare_model(args, len(data.classes), device)
    loader = make_loader(
        data.train_set, args, shuffle=True, sample_weights=data.sample_weights, launch=launch
    )
    optimizer, scheduler = make_optimizer(model, args, args.epochs * len(loader))
    trained = distributed.wrap(model, launch, device)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    start_epoch = resume(out, args, model, optimizer, scheduler, loader, launch)
    val_set = FoodDataset(
        data.root, args.val_split, eval_preset(args), limit_per_class=args.limit_per_class
    )
    val_loader = make_loader(val_set, args, shuffle=False)
    for epoch in range(start_epoch, args.epochs):
        started = time.perf_counter()
        loss = train_one_epoch(
            trained, criterion, optimizer, scheduler, loader, device, epoch, args, launch
        )
        rng_of_ranks = distributed.gather(rng_state(loader), launch) if launch.torchrun else None
        if launch.is_main:
            logits, _, targets = collect_outputs(model, val_loader, device, "val")
            report_epoch(epoch, loss, logits, targets, args, started)
            save_checkpoint(
                out, epoch, args, data.classes, model, optimizer, scheduler, loader, rng_of_ranks
            )
        distributed.barrier(launch)

    card: dict[str, Any] = {}
    if launch.is_main:
        card = finalize(model, args, data, device, launch)
        print(summary(out, card))
    return distributed.from_main(card, launch)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Fine-tune a DishLens classifier.", add_help=add_help
    )
    parser.add_argument("--data", required=True, help="Food-101-layout folder or s3:// prefix")
    parser.add_argument("--out", required=True, help="directory for the checkpoint and artifact")
    parser.add_argument(
        "--extra-data",
        action="append",
        default=[],
        type=extra_source,
        metavar="SOURCE[:WEIGHT]",
        help="also train on a feedback folder or s3:// prefix, each photo drawn WEIGHT times as "
        "often as a --data photo (default 1); repeatable; never used for validation",
    )
    parser.add_argument("--name", default="dishlens-food", help="model name in the card")
    parser.add_argument(
        "--arch",
        default="efficientnet-lite0",
        choices=sorted(ARCHITECTURES),
        help="backbone (default: efficientnet-lite0)",
    )
    add_option(parser, "--epochs", 15, "epochs")
    add_option(parser, "--dropout", 0.2, "dropout before the dish head; 0 turns it off")
    add_data_arguments(parser)
    for flag, default, help_text in (
        ("--lr", 1e-3, "peak trunk learning rate"),
        ("--head-lr-scale", 5.0, "head learning rate as a multiple of --lr"),
        ("--weight-decay", 0.05, "AdamW weight decay"),
        ("--warmup-fraction", 0.15, "share of steps spent warming up"),
        ("--label-smoothing", 0.1, "label smoothing"),
        ("--mixup-alpha", 0.0, "MixUp alpha; 0 turns it off"),
        ("--cutmix-alpha", 0.0, "CutMix alpha; 0 turns it off"),
        ("--train-crop-size", 224, "training crop"),
        ("--val-resize-size", 256, "evaluation resize of the shorter side"),
        ("--val-crop-size", 224, "evaluation centre crop = network input"),
    ):
        add_option(parser, flag, default, help_text)
    parser.add_argument(
        "--frozen-blocks",
        type=int,
        default=3,
        choices=range(TRUNK_BLOCKS + 1),
        metavar=f"0..{TRUNK_BLOCKS}",
        help="freeze the stem and this many MBConv blocks (default: 3)",
    )
    add_option(
        parser,
        "--shrink-size",
        None,
        "first shrink every photo to N×N the way food101-64 was made (centre square, JPEG "
        "quality 75); use 64 for food101-64",
    )
    parser.add_argument(
        "--fix-res",
        action="store_true",
        help="fine-tune at the evaluation pipeline instead of random crops: the evaluation "
        "resize and crop plus a random mirror image, every BatchNorm's statistics kept "
        "(FixRes; use with --init-from and most blocks frozen)",
    )
    parser.add_argument(
        "--test-time-flip",
        action="store_true",
        help="evaluate each photo together with its mirror image (twice the inference cost)",
    )
    add_real_photos_argument(parser)
    add_calibration_arguments(parser)
    parser.add_argument("--workers", type=int, default=1, help="data-loading workers (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument(
        "--init-from",
        default=None,
        help="start from the weights of this checkpoint or model directory, with a new "
        "schedule (default: ImageNet)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists"
    )
    return parser


if __name__ == "__main__":
    with (
        exit_on_bad_setting("classifier.train"),
        distributed.exit_on_bad_launch("classifier.train"),
    ):
        main(get_args_parser().parse_args())
