"""Datasets in Food-101 layout: ``meta/classes.txt``, ``meta/<split>.txt`` and
``images/<label>/<id>.jpg``.

The same reader takes the 10-dish ``food-mnist`` folder, the 101-dish ``food101-64`` folder and
a full Food-101 download. An ``s3://bucket/prefix/`` source is copied to a local cache first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from classifier.errors import DatasetError


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing: expected a folder in Food-101 layout.")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_classes(root: Path) -> list[str]:
    return read_lines(root / "meta" / "classes.txt")


class FoodDataset(Dataset):
    """``(image_tensor, class_index)`` pairs of one split; ``limit_per_class`` keeps the first N."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        transform: Callable[[Image.Image], Any] | None = None,
        *,
        limit_per_class: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.classes = read_classes(self.root)
        index = {label: i for i, label in enumerate(self.classes)}
        self.samples: list[tuple[Path, int]] = []
        taken: dict[str, int] = {}
        for entry in read_lines(self.root / "meta" / f"{split}.txt"):
            label = entry.split("/", 1)[0]
            if label not in index:
                raise DatasetError(f"{split}.txt names {label!r}, which classes.txt does not list.")
            if limit_per_class is not None and taken.get(label, 0) >= limit_per_class:
                continue
            taken[label] = taken.get(label, 0) + 1
            self.samples.append((self.root / "images" / f"{entry}.jpg", index[label]))
        if not self.samples:
            raise DatasetError(f"{split}.txt under {self.root} lists no images.")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        path, target = self.samples[i]
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        return (self.transform(image) if self.transform else image), target


def photo_batches(
    dataset: FoodDataset, batch_size: int, desc: str, *, leave: bool = True
) -> Iterator[list[Any]]:
    """The dataset's items (without targets) in order, ``batch_size`` at a time, with progress."""
    for start in tqdm(range(0, len(dataset), batch_size), desc=desc, unit="batch", leave=leave):
        yield [dataset[i][0] for i in range(start, min(start + batch_size, len(dataset)))]


def resolve_data_root(source: str, cache_dir: Path) -> Path:
    """A local folder for ``source``: the folder itself, or a cached copy of an S3 prefix."""
    if not source.startswith("s3://"):
        root = Path(source).expanduser()
        if not (root / "meta" / "classes.txt").is_file():
            raise DatasetError(f"{root} is not in Food-101 layout (no meta/classes.txt).")
        return root
    from classifier.s3 import download_prefix

    bucket_and_prefix = source[len("s3://") :].rstrip("/")
    target = cache_dir / "datasets" / bucket_and_prefix.replace("/", "__")
    download_prefix(source, target)
    return target
