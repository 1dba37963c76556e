from pathlib import Path

import boto3
import pytest
from PIL import Image

from classifier.data import FoodDataset, resolve_data_root
from classifier.errors import DatasetError


def make_dataset(root: Path, labels=("apple_pie", "baklava"), per_class: int = 2) -> Path:
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "classes.txt").write_text("\n".join(labels) + "\n")
    entries = []
    for label in labels:
        (root / "images" / label).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (40, 30), (i * 60, 90, 30)).save(root / "images" / label / f"{i}.jpg")
            entries.append(f"{label}/{i}")
    (root / "meta" / "train.txt").write_text("\n".join(entries) + "\n")
    return root


def test_dataset_reads_food101_layout(tmp_path: Path) -> None:
    dataset = FoodDataset(make_dataset(tmp_path / "d"), "train")
    assert dataset.classes == ["apple_pie", "baklava"]
    assert len(dataset) == 4
    image, target = dataset[3]
    assert image.size == (40, 30) and target == 1
    assert len(FoodDataset(tmp_path / "d", "train", limit_per_class=1)) == 2


def test_dataset_errors_say_what_is_wrong(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d")
    with pytest.raises(DatasetError, match=r"val\.txt is missing"):
        FoodDataset(root, "val")
    (root / "meta" / "train.txt").write_text("pizza/1\n")
    with pytest.raises(DatasetError, match=r"'pizza', which classes\.txt does not list"):
        FoodDataset(root, "train")
    with pytest.raises(DatasetError, match="not in Food-101 layout"):
        resolve_data_root(str(tmp_path / "nowhere"), tmp_path / "cache")


def test_training_data_can_come_from_s3(aws, tmp_path: Path) -> None:
    local = make_dataset(tmp_path / "d")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="food-data")
    for path in local.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "food-data", f"mini/{path.relative_to(local)}")
    root = resolve_data_root("s3://food-data/mini/", tmp_path / "cache")
    assert FoodDataset(root, "train").classes == ["apple_pie", "baklava"]
    assert len(FoodDataset(root, "train")) == 4
