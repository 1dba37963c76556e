"""Datasets in Food-101 layout: ``meta/classes.txt``, ``meta/<split>.txt`` and
``images/<label>/<id>.jpg``.

The same reader takes the 10-dish ``food-mnist`` folder, the 101-dish ``food101-64`` folder and
a full Food-101 download. An ``s3://bucket/prefix/`` source is copied to a local cache first.

Feedback (what the app's "Right dish?" store wrote) is read as labelled photos too:
:func:`read_feedback`, :class:`FeedbackDataset`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from classifier.errors import DatasetError
from dishlens.feedback import NOT_FOOD, OTHER_DISH


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing: expected a folder in Food-101 layout.")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_classes(root: Path) -> list[str]:
    return read_lines(root / "meta" / "classes.txt")


class LabelledPhotos(Dataset):
    """``(image_tensor, class_index)`` pairs from ``samples``: (photo path, class index)."""

    samples: list[tuple[Path, int]]
    transform: Callable[[Image.Image], Any] | None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        path, target = self.samples[i]
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        return (self.transform(image) if self.transform else image), target


class FoodDataset(LabelledPhotos):
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


# ---------------------------------------------------------------------------------------------
# FEEDBACK AS DATA
#
# A feedback folder or S3 prefix holds what ``dishlens.feedback.FeedbackStore`` wrote: a photo
# and a JSON record side by side. Decisions: a photo is known by the SHA-256 of its bytes (the
# store re-encodes every photo the same way, so the same photo sent twice has the same bytes);
# repeats that agree count once; a photo whose answers disagree is left out entirely (no
# majority vote: two people disagreeing about one photo is a reason to look at it, not to
# learn from it); "no" without a correction says nothing about the dish and is left out.


@dataclass(frozen=True)
class FeedbackPhoto:
    """One distinct photo and the answer it stands for: a dish label, NOT_FOOD or OTHER_DISH."""

    path: Path
    label: str
    sha256: str
    record_ids: tuple[str, ...]


@dataclass
class FeedbackSet:
    """A feedback source read as data.

    ``dishes`` are examples of their dish (confirmations and corrections), ``not_food`` photos
    people said are not food (for the not-food detector), ``for_review`` photos of "a dish not
    in this list" (kept, never trained on). The counters say what was left out and why.
    """

    source: str
    dishes: list[FeedbackPhoto] = field(default_factory=list)
    not_food: list[FeedbackPhoto] = field(default_factory=list)
    for_review: list[FeedbackPhoto] = field(default_factory=list)
    records: int = 0
    duplicates: int = 0
    contradictory_photos: int = 0
    contradictory_records: int = 0
    without_answer: int = 0
    unreadable: int = 0

    def per_dish(self) -> dict[str, int]:
        """Usable photos per dish, most first."""
        counts = Counter(photo.label for photo in self.dishes)
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "dish_photos": len(self.dishes),
            "not_food_photos": len(self.not_food),
            "for_review_photos": len(self.for_review),
            "duplicates": self.duplicates,
            "contradictory_photos": self.contradictory_photos,
            "contradictory_records": self.contradictory_records,
            "without_answer": self.without_answer,
            "unreadable": self.unreadable,
        }


def answer_label(record: dict[str, Any]) -> str | None:
    """What a record says the photo shows: a dish label, NOT_FOOD, OTHER_DISH or None."""
    if record.get("correct") is True:
        label = record.get("predicted_label")
    else:
        label = record.get("correction")
    return label if isinstance(label, str) and label else None


def read_feedback(source: str, cache_dir: Path) -> FeedbackSet:
    """Read a feedback folder or ``s3://`` prefix (copied to ``cache_dir`` first).

    Raises:
        DatasetError: a local folder that does not exist.
        ModelDownloadError: the S3 prefix could not be read.
    """
    root = _feedback_root(source, cache_dir)
    result = FeedbackSet(source)
    answers: dict[str, list[tuple[str, str, Path]]] = defaultdict(list)
    for record_path in sorted(root.rglob("*.json")):
        result.records += 1
        read = _read_record(record_path)
        if read is None:
            result.unreadable += 1
            continue
        record_id, label, photo = read
        if label is None:
            result.without_answer += 1
            continue
        digest = hashlib.sha256(photo.read_bytes()).hexdigest()
        answers[digest].append((record_id, label, photo))
    for digest, given in answers.items():
        labels = {label for _, label, _ in given}
        if len(labels) > 1:
            result.contradictory_photos += 1
            result.contradictory_records += len(given)
            continue
        result.duplicates += len(given) - 1
        _, label, photo = given[0]
        item = FeedbackPhoto(photo, label, digest, tuple(record_id for record_id, _, _ in given))
        kind = {NOT_FOOD: result.not_food, OTHER_DISH: result.for_review}
        kind.get(label, result.dishes).append(item)
    return result


def _feedback_root(source: str, cache_dir: Path) -> Path:
    if not source.startswith("s3://"):
        root = Path(source).expanduser()
        if not root.is_dir():
            raise DatasetError(f"The feedback folder {source} does not exist.")
        return root
    from classifier.s3 import download_prefix

    target = cache_dir / "feedback" / source[len("s3://") :].rstrip("/").replace("/", "__")
    shutil.rmtree(target, ignore_errors=True)  # a fresh copy: records are only ever added
    download_prefix(source, target)
    return target


def _read_record(path: Path) -> tuple[str, str | None, Path] | None:
    """``(id, answer, photo)`` of a JSON record, or None when it is not a readable record."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("image"), str):
        return None
    image = record["image"]
    photo = path.parent / image
    if "/" in image or "\\" in image or image in ("", ".", "..") or not photo.is_file():
        return None
    return str(record.get("id", path.stem)), answer_label(record), photo


class FeedbackDataset(LabelledPhotos):
    """``(image_tensor, class_index)`` pairs of feedback photos of dishes in ``classes``;
    ``unknown`` counts photos of dishes the model does not have (left out)."""

    def __init__(
        self,
        photos: list[FeedbackPhoto],
        classes: list[str],
        transform: Callable[[Image.Image], Any] | None = None,
    ) -> None:
        index = {label: i for i, label in enumerate(classes)}
        self.samples = [
            (photo.path, index[photo.label]) for photo in photos if photo.label in index
        ]
        self.unknown = len(photos) - len(self.samples)
        self.transform = transform
