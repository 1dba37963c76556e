"""A small but real model artifact, built without the shared photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from classifier.artifact import save_artifact
from classifier.metrics import MahalanobisScorer
from classifier.model import FEATURE_DIM, build_model
from dishlens.labels import readable_label

LABELS = ["apple_pie", "baklava", "bibimbap"]


def make_artifact(out: Path) -> Path:
    """ImageNet-pretrained Lite0 with a seeded random 3-dish head and matching OOD statistics."""
    torch.manual_seed(0)
    model = build_model("efficientnet-lite0", len(LABELS))
    features = torch.randn(60, FEATURE_DIM)
    scorer = MahalanobisScorer.fit(features, torch.arange(60) % len(LABELS), len(LABELS))
    card = {
        "name": "test-model",
        "version": "0",
        "architecture": "efficientnet-lite0",
        "num_classes": len(LABELS),
        "input_size": 224,
        "preprocessing": {"resize_size": 256, "crop_size": 224, "shrink_size": None},
        "temperature": 1.0,
        "thresholds": {"unsure_probability": 0.5, "not_food_score": 1e9},
    }
    save_artifact(out, model, scorer, {label: readable_label(label) for label in LABELS}, card)
    return out


@pytest.fixture(scope="session")
def artifact_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_artifact(tmp_path_factory.mktemp("artifact") / "model")


@pytest.fixture
def artifact_dir(artifact_template: Path, tmp_path: Path) -> Path:
    """A fresh copy that a test may damage."""
    return Path(shutil.copytree(artifact_template, tmp_path / "model"))
