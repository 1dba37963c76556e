"""The scripts under scripts/ loaded as modules, and a small model artifact to move around."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType

import boto3
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def publish_model() -> ModuleType:
    return load_script("publish_model")


@pytest.fixture(scope="session")
def fetch_model() -> ModuleType:
    return load_script("fetch_model")


@pytest.fixture
def bucket(aws: str) -> str:
    """A new, empty bucket on the loopback moto server."""
    name = f"models-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def small_model(tmp_path: Path) -> Path:
    """An artifact with the three files and a card whose checksum matches the weights."""
    model = tmp_path / "small-model"
    model.mkdir()
    weights = bytes(range(256)) * 64
    (model / "model.safetensors").write_bytes(weights)
    (model / "labels.json").write_text(json.dumps({"0": "pizza", "1": "ramen"}))
    card = {
        "name": "small",
        "version": "1",
        "weights_file": "model.safetensors",
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    (model / "card.json").write_text(json.dumps(card))
    return model
