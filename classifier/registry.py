"""A model registry on S3: versions under one prefix, a ``production`` pointer, a promotion gate.

Layout::

    s3://BUCKET/models/NAME/2026-12-04/      a version: weights, labels.json, card.json, manifest
    s3://BUCKET/models/NAME/production       {"version": "2026-12-04", ...}: the pointer

``MODEL_URI=s3://BUCKET/models/NAME/production`` loads whatever version the pointer names
(:func:`resolve_pointer`; each version is cached on its own, so moving the pointer loads the new
one). The pointer may only name a version beside it, never another bucket or prefix.

The gate (:func:`compare`) decides whether a candidate may replace production, on a fixed
evaluation set: real photos of the dishes and the generated non-food set. Decisions:

- A food photo counts as right when the best dish is the true one and the photo is not refused
  as not food. The candidate is refused when it is worse than production beyond noise: an exact
  one-sided McNemar test on the photos only one of the two gets right (``p < alpha``).
- The not-food bar: the share of the generated non-food images called ``not_food``. That set is
  fixed, not a sample, so the bar is a plain threshold.
- The ``confident``-precision bar: among food photos answered ``confident``, the share that is
  right. An evaluation set of a few photos a dish is a small sample, so the candidate is refused
  only when even the upper end of a one-sided Wilson interval is below the bar; a model that
  answers nothing ``confident`` claims nothing and passes this bar (McNemar still judges it).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from classifier.calibrate import accuracy_lower_bound
from classifier.data import FoodDataset
from classifier.errors import ModelDownloadError, PointerMovedError, PublishError
from classifier.nonfood import nonfood_images
from classifier.predictor import Classifier
from classifier.s3 import split_uri

POINTER_NAME = "production"
POINTER_FORMAT = 1
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


# ---------------------------------------------------------------------------------------------
# THE POINTER


def is_pointer(uri: str) -> bool:
    """Whether ``uri`` names a registry's production pointer (``s3://…/NAME/production``)."""
    return uri.startswith("s3://") and uri.rstrip("/").rsplit("/", 1)[-1] == POINTER_NAME


def registry_of(version_uri: str) -> tuple[str, str]:
    """``s3://b/models/NAME/V/`` -> ``("s3://b/models/NAME/", "V")``."""
    bucket, prefix = split_uri(version_uri)
    parent, _, version = prefix.rstrip("/").rpartition("/")
    if not parent or not _VERSION.fullmatch(version) or version == POINTER_NAME:
        raise PublishError(
            f"{version_uri} is not a version in a registry; publish to "
            "s3://BUCKET/models/NAME/VERSION/ (VERSION: letters, digits, '.', '-', '_')."
        )
    return f"s3://{bucket}/{parent}/", version


def read_pointer(pointer_uri: str) -> dict[str, Any] | None:
    """The pointer's JSON object, or None when the registry has no production model yet.

    Raises:
        ModelDownloadError: S3 failed, or the object is not a pointer.
    """
    return read_pointer_state(pointer_uri).pointer


@dataclass(frozen=True)
class PointerState:
    """The pointer as read, with the S3 ETag a conditional write checks (None: no pointer)."""

    pointer: dict[str, Any] | None
    etag: str | None


def read_pointer_state(pointer_uri: str) -> PointerState:
    """:func:`read_pointer`, with the ETag :func:`write_pointer` needs to move it safely."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_uri(pointer_uri)
    try:
        response = boto3.client("s3").get_object(Bucket=bucket, Key=key.rstrip("/"))
        body = response["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
            return PointerState(None, None)
        raise _unreadable_pointer(pointer_uri) from error
    except BotoCoreError as error:
        raise _unreadable_pointer(pointer_uri) from error
    try:
        pointer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        pointer = None
    if not isinstance(pointer, dict) or not _VERSION.fullmatch(str(pointer.get("version", ""))):
        raise ModelDownloadError(f"{pointer_uri} is not a model pointer (a version's name).")
    return PointerState(pointer, response["ETag"])


def resolve_pointer(pointer_uri: str) -> str:
    """The version URI the pointer names.

    Raises:
        ModelDownloadError: no pointer there, or it cannot be read.
    """
    pointer = read_pointer(pointer_uri)
    if pointer is None:
        raise ModelDownloadError(f"No production model has been promoted at {pointer_uri}.")
    return pointer_uri.rstrip("/")[: -len(POINTER_NAME)] + pointer["version"] + "/"


# S3's answers to a conditional write whose condition no longer holds.
_CONDITION_FAILED = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def write_pointer(
    registry: str,
    version: str,
    comparison: dict[str, Any] | None,
    replacing: PointerState,
) -> dict[str, Any]:
    """Point ``registry``'s production at ``version`` (already published); returns the pointer.

    The write is conditional on the pointer still being ``replacing`` (S3's If-Match on its
    ETag, or If-None-Match when there was none), so of two promotions at once only one moves
    it; the other compared against a production that is no longer there and is refused.

    Raises:
        PointerMovedError: the pointer changed after ``replacing`` was read.
        PublishError: S3 refused the write.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    pointer_uri = registry + POINTER_NAME
    previous = replacing.pointer
    pointer = {
        "format": POINTER_FORMAT,
        "version": version,
        "previous": previous["version"] if previous else None,
        "promoted": datetime.now(UTC).isoformat(timespec="seconds"),
        "accepted_by_gate": None if comparison is None else comparison["accepted"],
        # A rollback keeps the evaluation set the versions were compared on.
        "evaluation_set": (
            comparison["evaluation_set"]
            if comparison is not None
            else (previous or {}).get("evaluation_set")
        ),
    }
    bucket, key = split_uri(pointer_uri)
    condition = {"IfMatch": replacing.etag} if replacing.etag else {"IfNoneMatch": "*"}
    try:
        boto3.client("s3").put_object(
            Bucket=bucket,
            Key=key.rstrip("/"),
            Body=json.dumps(pointer, indent=2).encode() + b"\n",
            ContentType="application/json",
            **condition,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _CONDITION_FAILED:
            raise PointerMovedError(
                f"{pointer_uri} moved while this change was being made, so it was left as it "
                f"is, not pointed at {version}. Run the promotion again to compare with the "
                "new production model."
            ) from error
        raise PublishError(f"Could not move {pointer_uri}: {error}") from error
    except BotoCoreError as error:
        raise PublishError(f"Could not move {pointer_uri}: {error}") from error
    return pointer


def _unreadable_pointer(uri: str) -> ModelDownloadError:
    return ModelDownloadError(
        f"Could not read the model pointer {uri}; check the bucket and the AWS credentials."
    )


# ---------------------------------------------------------------------------------------------
# THE GATE


@dataclass(frozen=True)
class GateBars:
    alpha: float = 0.05
    not_food: float = 0.9
    confident_precision: float = 0.9
    confidence: float = 0.95


@dataclass(frozen=True)
class EvaluationSet:
    """Food photos with their true labels, and the generated non-food images."""

    photos: list[Image.Image]
    labels: list[str]
    non_food: list[Image.Image]
    fingerprint: str = ""


def mcnemar_p_value(only_production: int, only_candidate: int) -> float:
    """Exact one-sided McNemar p-value that the candidate is worse: the chance of at least
    ``only_production`` of the discordant photos going production's way if both were equal."""
    n = only_production + only_candidate
    tail = sum(math.comb(n, k) for k in range(only_production, n + 1))
    return tail / 2**n if n else 1.0


def outcome(classifier: Classifier, evaluation: EvaluationSet) -> dict[str, Any]:
    """Which food photos the model gets right, its confident precision and not-food share."""
    missing = sorted(set(evaluation.labels) - set(classifier.labels))
    if missing:
        raise PublishError(f"{classifier.name} has no output for {', '.join(missing)}.")
    predictions = classifier.predict_batch(evaluation.photos)
    right = [
        p.status != "not_food" and p.best.label == truth
        for p, truth in zip(predictions, evaluation.labels, strict=True)
    ]
    confident = [ok for ok, p in zip(right, predictions, strict=True) if p.status == "confident"]
    refused = classifier.predict_batch(evaluation.non_food)
    return {
        "model": classifier.name,
        "right": right,
        "accuracy": sum(right) / len(right),
        "confident": len(confident),
        "confident_right": sum(confident),
        "not_food_share": sum(p.status == "not_food" for p in refused) / len(refused),
    }


def compare(
    candidate: dict[str, Any], production: dict[str, Any] | None, bars: GateBars
) -> dict[str, Any]:
    """The gate's decision for two :func:`outcome` results on the same evaluation set."""
    reasons = []
    wrong = candidate["confident"] - candidate["confident_right"]
    precision_upper = 1 - accuracy_lower_bound(wrong, candidate["confident"], bars.confidence)
    if candidate["confident"] and precision_upper < bars.confident_precision:
        reasons.append(
            f"confident precision {candidate['confident_right']}/{candidate['confident']} is "
            f"below the bar {bars.confident_precision} beyond noise"
        )
    if candidate["not_food_share"] < bars.not_food:
        reasons.append(
            f"calls {candidate['not_food_share']:.1%} of the non-food set not food "
            f"(bar {bars.not_food:.0%})"
        )
    paired = None if production is None else paired_test(production, candidate)
    if paired is not None and paired["mcnemar_p_value"] < bars.alpha:
        reasons.append(
            f"worse than production {paired['production']} beyond noise (McNemar p = "
            f"{paired['mcnemar_p_value']:.2g}: {paired['only_production_right']} photos only "
            f"production gets right, {paired['only_candidate_right']} only the candidate)"
        )
    return {
        "accepted": not reasons,
        "reasons": reasons,
        "photos": len(candidate["right"]),
        "accuracy": candidate["accuracy"],
        "confident": candidate["confident"],
        "confident_right": candidate["confident_right"],
        "confident_precision_upper_bound": precision_upper,
        "not_food_share": candidate["not_food_share"],
        "against_production": paired,
        "bars": vars(bars),
        "compared": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def paired_test(production: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """McNemar on the photos exactly one of the two models gets right."""
    pairs = list(zip(production["right"], candidate["right"], strict=True))
    only_production = sum(p and not c for p, c in pairs)
    only_candidate = sum(c and not p for p, c in pairs)
    return {
        "production": production["model"],
        "production_accuracy": production["accuracy"],
        "only_production_right": only_production,
        "only_candidate_right": only_candidate,
        "mcnemar_p_value": mcnemar_p_value(only_production, only_candidate),
    }


def evaluation_set(root: Path, split: str, limit_per_class: int | None) -> EvaluationSet:
    """The food photos of ``split`` under a Food-101-layout ``root`` (at their own resolution,
    the first ``limit_per_class`` of each dish) and the generated non-food set.

    Its fingerprint is the SHA-256 of every food photo's label and file digest, so a set is
    known by its photos wherever it is stored (the non-food set is fixed by the code).
    """
    dataset = FoodDataset(root, split, limit_per_class=limit_per_class)
    photos, labels, digests = [], [], hashlib.sha256()
    for i, (path, _) in enumerate(dataset.samples):
        image, target = dataset[i]
        photos.append(image)
        labels.append(dataset.classes[target])
        digests.update(f"{labels[-1]} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    non_food = [item.image for item in nonfood_images()]
    return EvaluationSet(photos, labels, non_food, digests.hexdigest())
