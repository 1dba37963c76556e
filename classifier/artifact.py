"""A model is a directory: ``model.safetensors``, ``labels.json`` and ``card.json``.

The card records how the model was built and measured, the SHA-256 of the weights and its own
SHA-256 (``card_sha256``, over the card's canonical JSON without that key). Loading checks both
checksums, the keys and sizes the loader uses (:func:`check_card`: a bare ``weights_file``
name, bounded input sizes; other keys are free), and that ``labels.json`` matches the weights'
number of outputs.

Error messages name the model's files (``card.json``), never server paths; the full path is the
error's ``path`` attribute, for logs.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
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
CARD_CHECKSUM = "card_sha256"
# Image sides the network and its preprocessing may ask for: 100000 would need gigabytes.
MIN_SIDE, MAX_SIDE = 16, 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
    card = seal_card(
        {
            **card,
            "weights_file": WEIGHTS_FILE,
            "weights_dtype": "float16",
            "weights_sha256": sha256_of(weights),
        }
    )
    (out_dir / LABELS_FILE).write_text(json.dumps(labels, indent=2) + "\n")
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    return card


def card_checksum(card: dict[str, Any]) -> str:
    """SHA-256 of the card's canonical JSON (sorted keys, no spaces), ``card_sha256`` left out."""
    body = {key: value for key, value in card.items() if key != CARD_CHECKSUM}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def seal_card(card: dict[str, Any]) -> dict[str, Any]:
    """The card with ``card_sha256`` set to :func:`card_checksum` (last, for readability)."""
    body = {key: value for key, value in card.items() if key != CARD_CHECKSUM}
    return {**body, CARD_CHECKSUM: card_checksum(body)}


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise ModelNotFoundError(f"The model's {path.name} is missing.", str(path))
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelArtifactError(
            f"The model's {path.name} is not valid JSON.", str(path)
        ) from error


def check_card(card: Any, path: str = CARD_FILE) -> None:
    """Raises ModelArtifactError unless ``card`` has the keys the loader uses, with sane values.

    Checked: its own checksum; ``name``, ``version``, ``architecture`` (text); ``weights_sha256``
    (64 hex digits); ``weights_file`` (a bare file name, if present); ``input_size`` and the
    preprocessing sizes (whole numbers from :data:`MIN_SIDE` to :data:`MAX_SIDE`);
    ``temperature`` (a positive number); ``thresholds`` (numbers); ``food_gate`` (if present:
    an ``input_size`` and a list of class numbers). Other keys are allowed.
    """
    problem = _card_problem(card)
    if problem is not None:
        raise ModelArtifactError(f"The model's {CARD_FILE} is not valid: {problem}.", path)


def _card_problem(card: Any) -> str | None:
    if not isinstance(card, dict):
        return "it is not a JSON object"
    if card.get(CARD_CHECKSUM) != card_checksum(card):
        return f"its {CARD_CHECKSUM} does not match its content (edited or damaged)"
    for key in ("name", "version", "architecture"):
        if not isinstance(card.get(key), str) or not card[key]:
            return f"{key!r} must be non-empty text"
    if not isinstance(card.get("weights_sha256"), str) or not _SHA256.fullmatch(
        card["weights_sha256"]
    ):
        return "'weights_sha256' must be 64 hexadecimal digits"
    weights_file = card.get("weights_file", WEIGHTS_FILE)
    if not _is_bare_name(weights_file):
        return "'weights_file' must be a file name in the model's folder"
    spec = card.get("preprocessing")
    if not isinstance(spec, dict):
        return "'preprocessing' must be an object"
    sizes = {"input_size": card.get("input_size"), **{k: spec.get(k) for k in _PRESET_SIZES}}
    if spec.get("shrink_size") is None:
        sizes.pop("shrink_size")
    for key, value in sizes.items():
        if not _is_side(value):
            return f"{key!r} must be a whole number from {MIN_SIDE} to {MAX_SIDE}"
    if not _is_number(card.get("temperature")) or card["temperature"] <= 0:
        return "'temperature' must be a positive number"
    thresholds = card.get("thresholds")
    if not isinstance(thresholds, dict) or not all(map(_is_number, thresholds.values())):
        return "'thresholds' must map names to numbers"
    return _food_gate_problem(card.get("food_gate"))


_PRESET_SIZES = ("resize_size", "crop_size", "shrink_size")


def _food_gate_problem(gate: Any) -> str | None:
    if gate is None:
        return None
    if not isinstance(gate, dict) or not _is_side(gate.get("input_size")):
        return f"'food_gate.input_size' must be a whole number from {MIN_SIDE} to {MAX_SIDE}"
    classes = gate.get("food_classes")
    if not isinstance(classes, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) for c in classes
    ):
        return "'food_gate.food_classes' must be a list of class numbers"
    return None


def _is_bare_name(name: Any) -> bool:
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and PurePosixPath(name).name == name
    )


def _is_side(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and MIN_SIDE <= value <= MAX_SIDE


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
        raise ModelNotFoundError(
            "No model directory where MODEL_URI (or --model) points.", str(model_dir)
        )
    card = read_json(model_dir / CARD_FILE)
    check_card(card, str(model_dir / CARD_FILE))
    labels = read_json(model_dir / LABELS_FILE)
    weights = model_dir / card.get("weights_file", WEIGHTS_FILE)
    if not weights.is_file():
        raise ModelNotFoundError(f"The model's {weights.name} is missing.", str(weights))
    if sha256_of(weights) != card.get("weights_sha256"):
        raise ChecksumMismatchError(
            f"The model's {weights.name} does not match the checksum in {CARD_FILE}: it is "
            "corrupt, truncated or from another model.",
            str(weights),
        )
    try:
        with safe_open(str(weights), "pt") as tensors:
            has_head = "head.weight" in tensors.keys()  # noqa: SIM118 (safe_open has no __contains__)
            n_outputs = tensors.get_slice("head.weight").get_shape()[0] if has_head else -1
    except (SafetensorError, OSError, ValueError) as error:
        raise _unreadable(weights) from error
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise LabelMismatchError(
            f"The model's {LABELS_FILE} must map each dish's label to its display name.",
            str(model_dir / LABELS_FILE),
        )
    if len(labels) != n_outputs:
        raise LabelMismatchError(
            f"The model's {LABELS_FILE} lists {len(labels)} dishes but the weights have "
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
            f"The model's {weights.name} does not fit a {card['architecture']} model.",
            str(weights),
        )
    return model, scorer, labels, card


def _unreadable(weights: Path) -> ModelArtifactError:
    return ModelArtifactError(f"The model's {weights.name} cannot be read.", str(weights))


def fetch_s3_model(uri: str, cache_dir: Path) -> Path:
    """Download ``s3://bucket/prefix/`` once into ``cache_dir`` and return the local directory.

    A cached copy is reused only while its weights still match its card's checksum. A
    registry's ``…/production`` pointer is read first and the version it names is fetched
    (:mod:`classifier.registry`), each version cached under its own name.
    """
    from classifier.registry import is_pointer, resolve_pointer
    from classifier.s3 import contained, download_prefix, split_uri

    if is_pointer(uri):
        uri = resolve_pointer(uri)

    bucket, prefix = split_uri(uri)
    local = contained(cache_dir, f"{bucket}/{prefix}")
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
        check_card(card)
        return (
            sha256_of(model_dir / card.get("weights_file", WEIGHTS_FILE)) == card["weights_sha256"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False
