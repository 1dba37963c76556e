"""A model is a directory: ``model.safetensors``, ``labels.json`` and ``card.json``.

The card records how the model was built and measured and the SHA-256 of the weights; loading
checks that checksum and that ``labels.json`` matches the weights' number of outputs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from classifier.errors import (
    ChecksumMismatchError,
    LabelMismatchError,
    ModelArtifactError,
    ModelNotFoundError,
)
from classifier.metrics import MahalanobisScorer
from classifier.model import FoodNet, build_model

WEIGHTS_FILE = "model.safetensors"
LABELS_FILE = "labels.json"
CARD_FILE = "card.json"
ARTIFACT_FILES = (WEIGHTS_FILE, LABELS_FILE, CARD_FILE)
_OOD_PREFIX = "ood."


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_version() -> str:
    """The short git commit of the code that writes a model ("unknown" outside a checkout)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def save_artifact(
    out_dir: Path,
    model: FoodNet,
    scorer: MahalanobisScorer,
    labels: dict[str, str],
    card: dict[str, Any],
) -> dict[str, Any]:
    """Write the three files; the weights are stored as float16, the OOD statistics as float32.

    Returns the card as written (with the weights' checksum and dtype filled in).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: v.detach().half().contiguous()
        for k, v in model.state_dict().items()
        if v.is_floating_point()
    }
    tensors[_OOD_PREFIX + "means"] = scorer.means.contiguous()
    tensors[_OOD_PREFIX + "precision"] = scorer.precision.contiguous()
    weights = out_dir / WEIGHTS_FILE
    save_file(tensors, str(weights))
    card = {
        **card,
        "weights_file": WEIGHTS_FILE,
        "weights_dtype": "float16",
        "weights_sha256": sha256_of(weights),
    }
    (out_dir / LABELS_FILE).write_text(json.dumps(labels, indent=2) + "\n")
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    return card


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise ModelNotFoundError(f"The model file {path} is missing.", str(path))
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelArtifactError(f"The model file {path} is not valid JSON.", str(path)) from error


def verify_artifact(model_dir: Path) -> tuple[dict[str, Any], dict[str, str], Path]:
    """The card, labels and weights path of a model directory, after every check that needs no
    network built: files present, weights matching the card's checksum, and as many labels as
    the dish head has outputs.

    Raises:
        ModelNotFoundError: the directory or one of its files is missing.
        ChecksumMismatchError: the weights are not the ones the card describes.
        LabelMismatchError: labels.json and the weights disagree on the number of dishes.
        ModelArtifactError: a file is corrupt or truncated.
    """
    if not model_dir.is_dir():
        raise ModelNotFoundError(f"No model directory at {model_dir}.", str(model_dir))
    card = read_json(model_dir / CARD_FILE)
    labels = read_json(model_dir / LABELS_FILE)
    weights = model_dir / card.get("weights_file", WEIGHTS_FILE)
    if not weights.is_file():
        raise ModelNotFoundError(f"The model file {weights} is missing.", str(weights))
    if sha256_of(weights) != card.get("weights_sha256"):
        raise ChecksumMismatchError(
            f"The weights file {weights} does not match the checksum in {CARD_FILE}: it is "
            "corrupt, truncated or from another model.",
            str(weights),
        )
    try:
        with safe_open(str(weights), "pt") as tensors:
            has_head = "head.weight" in tensors.keys()  # noqa: SIM118 (safe_open has no __contains__)
            n_outputs = tensors.get_slice("head.weight").get_shape()[0] if has_head else -1
    except (SafetensorError, OSError, ValueError) as error:
        raise _unreadable(weights) from error
    if not isinstance(labels, dict) or len(labels) != n_outputs:
        raise LabelMismatchError(
            f"{model_dir / LABELS_FILE} lists {len(labels)} dishes but the weights have "
            f"{n_outputs} outputs.",
            str(model_dir / LABELS_FILE),
        )
    return card, labels, weights


def load_artifact(
    model_dir: Path,
) -> tuple[FoodNet, MahalanobisScorer, dict[str, str], dict[str, Any]]:
    """Verify (:func:`verify_artifact`) and load a model directory.

    Raises:
        ModelNotFoundError, ChecksumMismatchError, LabelMismatchError: as ``verify_artifact``.
        ModelArtifactError: a file is corrupt or truncated, or the weights do not fit the
            card's architecture.
    """
    card, labels, weights = verify_artifact(model_dir)
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        raise _unreadable(weights) from error
    n_outputs = len(labels)
    model = build_model(
        card["architecture"], n_outputs, pretrained=False, image_size=card.get("input_size")
    )
    scorer = MahalanobisScorer(
        tensors.pop(_OOD_PREFIX + "means"), tensors.pop(_OOD_PREFIX + "precision")
    )
    missing, unexpected = model.load_state_dict(
        {k: v.float() for k, v in tensors.items()}, strict=False
    )
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    model.test_time_flip = bool(card.get("test_time_flip", False))
    if missing or unexpected:
        raise ModelArtifactError(
            f"The weights file {weights} does not fit a {card['architecture']} model.", str(weights)
        )
    return model, scorer, labels, card


def _unreadable(weights: Path) -> ModelArtifactError:
    return ModelArtifactError(f"The weights file {weights} cannot be read.", str(weights))


def fetch_s3_model(uri: str, cache_dir: Path) -> Path:
    """Download ``s3://bucket/prefix/`` once into ``cache_dir`` and return the local directory.

    A cached copy is reused only while its weights still match its card's checksum.
    """
    from classifier.s3 import download_prefix, split_uri

    bucket, prefix = split_uri(uri)
    local = cache_dir / bucket / prefix
    if _is_verified(local):
        return local
    staging = local.with_name(local.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    download_prefix(uri, staging)
    if not _is_verified(staging):
        shutil.rmtree(staging, ignore_errors=True)
        raise ChecksumMismatchError(
            f"The model at {uri} failed its checksum check after download.", uri
        )
    shutil.rmtree(local, ignore_errors=True)
    staging.rename(local)
    return local


def _is_verified(model_dir: Path) -> bool:
    try:
        card = json.loads((model_dir / CARD_FILE).read_text())
        return (
            sha256_of(model_dir / card.get("weights_file", WEIGHTS_FILE)) == card["weights_sha256"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False
