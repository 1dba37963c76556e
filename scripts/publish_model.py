"""Publish a model directory to S3 with a SHA-256 manifest.

    python scripts/publish_model.py models/food101-lite0 s3://BUCKET/models/food101-lite0/2026-11-23/

The artifact's files (weights, ``labels.json``, ``card.json``) go up first and
``manifest.json`` (each file's SHA-256 and size) last, so a version without a manifest is an
unfinished upload, which ``scripts/fetch_model.py`` refuses. Only an artifact whose weights
match its card is published, and a published version is never replaced unless asked.

A registry keeps every version of a model under one prefix and a ``production`` pointer beside
them (:mod:`classifier.registry`; ``MODEL_URI=s3://BUCKET/models/NAME/production``)::

    python scripts/publish_model.py runs/next s3://BUCKET/models/food101-lite0/2026-12-04/ \
        --promote --eval-data ../shared/data/food-mnist --eval-limit-per-class 10
    python scripts/publish_model.py --rollback s3://BUCKET/models/food101-lite0/2026-11-23/

``--promote`` runs the gate first: the candidate and the production model on the same fixed
evaluation set (``--eval-data``'s ``--eval-split`` photos and the generated non-food set). A
refused candidate is not uploaded; an accepted one is published with the comparison in its card
(``promotion``, the card re-sealed) and the pointer moves to it. ``--rollback`` moves the pointer
to a version already published, without a gate.

Exit status: 0 published (or pointer moved), 1 refused or failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python scripts/publish_model.py`
    sys.path.insert(0, str(ROOT))

from classifier.artifact import (  # noqa: E402
    CARD_FILE,
    LABELS_FILE,
    WEIGHTS_FILE,
    read_json,
    seal_card,
    sha256_of,
)
from classifier.errors import (  # noqa: E402
    ChecksumMismatchError,
    EvaluationSetChangedError,
    ModelNotFoundError,
    PointerMovedError,
    PromotionRefusedError,
    PublishError,
)
from classifier.s3 import split_uri  # noqa: E402
from dishlens.errors import DishLensError  # noqa: E402

if TYPE_CHECKING:
    from classifier.registry import GateBars

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1


def build_manifest(model_dir: Path) -> dict[str, Any]:
    """Check the artifact in ``model_dir`` and describe it: each file's SHA-256 and size.

    Raises:
        ModelNotFoundError: the directory or one of the artifact's files is missing.
        ChecksumMismatchError: the weights are not the ones the card describes.
    """
    card = read_json(model_dir / CARD_FILE)
    weights = card.get("weights_file", WEIGHTS_FILE)
    files = {}
    for name in (weights, LABELS_FILE, CARD_FILE):
        path = model_dir / name
        if not path.is_file():
            raise ModelNotFoundError(f"The model file {path} is missing.", str(path))
        files[name] = {"sha256": sha256_of(path), "size": path.stat().st_size}
    if files[weights]["sha256"] != card.get("weights_sha256"):
        raise ChecksumMismatchError(
            f"The weights file {model_dir / weights} does not match the checksum in {CARD_FILE}; "
            "refusing to publish it.",
            str(model_dir / weights),
        )
    return {
        "format": MANIFEST_FORMAT,
        "name": card.get("name"),
        "version": card.get("version"),
        "files": files,
    }


def publish(model_dir: Path, uri: str, *, overwrite: bool = False) -> dict[str, Any]:
    """Upload the artifact in ``model_dir`` to ``uri``, manifest last; returns the manifest.

    Raises:
        ModelNotFoundError: a file of the artifact is missing.
        ChecksumMismatchError: the weights do not match the card.
        PublishError: the version is already published (and ``overwrite`` is false), or S3
            refused a request.
    """
    import boto3
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_uri(uri)
    if not prefix:
        raise PublishError(f"{uri} names no prefix; publish to s3://BUCKET/models/NAME/VERSION/.")
    manifest = build_manifest(model_dir)
    client = boto3.client("s3")
    try:
        if not overwrite and _exists(client, bucket, prefix + MANIFEST_FILE):
            raise PublishError(
                f"{uri} is already published; choose a new version, or pass --overwrite."
            )
        for name, entry in manifest["files"].items():
            client.upload_file(str(model_dir / name), bucket, prefix + name)
            print(f"uploaded {name}: {entry['size']:,} bytes, sha256 {entry['sha256'][:16]}")
        client.put_object(
            Bucket=bucket,
            Key=prefix + MANIFEST_FILE,
            Body=json.dumps(manifest, indent=2).encode() + b"\n",
            ContentType="application/json",
        )
    except (Boto3Error, BotoCoreError, ClientError) as error:
        raise PublishError(f"Could not publish to {uri}: {error}") from error
    print(f"uploaded {MANIFEST_FILE}: {uri}{MANIFEST_FILE}")
    return manifest


def promote(
    model_dir: Path,
    uri: str,
    eval_data: Path,
    *,
    split: str = "val",
    limit_per_class: int | None = None,
    bars: GateBars | None = None,
    overwrite: bool = False,
    new_evaluation_set: bool = False,
) -> dict[str, Any]:
    """Gate the candidate in ``model_dir`` against the registry's production model; when
    accepted, publish it to ``uri`` with the comparison in its card and move the pointer.
    Returns the comparison.

    The evaluation set stays fixed across versions: the pointer records the fingerprint of the
    set production was promoted on, and a promotion on another set is refused unless
    ``new_evaluation_set`` says the change is meant.

    Raises:
        PromotionRefusedError: the gate refused the candidate (nothing was uploaded).
        EvaluationSetChangedError: production was promoted on another evaluation set.
        PointerMovedError: another promotion or rollback moved the pointer meanwhile (the
            candidate is published but production was left as it is).
        PublishError, ModelArtifactError, ModelDownloadError: as :func:`publish`, or a model
            that does not load.
    """
    from classifier.predictor import load_classifier
    from classifier.registry import (
        POINTER_NAME,
        GateBars,
        compare,
        evaluation_set,
        outcome,
        read_pointer_state,
        registry_of,
        write_pointer,
    )

    registry, version = registry_of(uri)
    evaluation = evaluation_set(eval_data, split, limit_per_class)
    described = {
        "data": str(eval_data),
        "split": split,
        "limit_per_class": limit_per_class,
        "photos": len(evaluation.photos),
        "fingerprint": evaluation.fingerprint,
        "non_food_images": len(evaluation.non_food),
    }
    pointer_uri = registry + POINTER_NAME
    state = read_pointer_state(pointer_uri)
    production = None
    if state.pointer is not None:
        if not new_evaluation_set:
            _check_same_evaluation_set(state.pointer, described)
        production_uri = registry + state.pointer["version"] + "/"
        production = outcome(load_classifier(production_uri), evaluation)
    candidate = outcome(load_classifier(str(model_dir)), evaluation)
    comparison = compare(candidate, production, bars or GateBars())
    comparison["evaluation_set"] = described
    if not comparison["accepted"]:
        raise PromotionRefusedError(
            f"{uri} was not promoted: {'; '.join(comparison['reasons'])}.", comparison
        )
    with tempfile.TemporaryDirectory() as staging:
        staged = Path(shutil.copytree(model_dir, Path(staging) / "model"))
        card = read_json(staged / CARD_FILE)
        card["promotion"] = comparison
        (staged / CARD_FILE).write_text(json.dumps(seal_card(card), indent=2) + "\n")
        publish(staged, uri, overwrite=overwrite)
    try:
        pointer = write_pointer(registry, version, comparison, state)
    except PointerMovedError as error:
        raise PointerMovedError(
            f"{uri} was published, but production moved while it was being compared, so the "
            "pointer was left as it is. Promote it again with --overwrite to compare it with "
            "the new production model."
        ) from error
    print(f"{pointer_uri} -> {version} (was {pointer['previous']})")
    return comparison


def _check_same_evaluation_set(pointer: dict[str, Any], described: dict[str, Any]) -> None:
    recorded = pointer.get("evaluation_set") or {}
    if recorded.get("fingerprint") in (None, described["fingerprint"]):
        return
    raise EvaluationSetChangedError(
        f"Production ({pointer['version']}) was promoted on another evaluation set "
        f"({recorded.get('photos', '?')} photos of {recorded.get('data', '?')} "
        f"{recorded.get('split', '?')}, limit {recorded.get('limit_per_class')}); this one has "
        f"{described['photos']}. Use the same --eval-data, --eval-split and "
        "--eval-limit-per-class so versions stay comparable, or pass --new-evaluation-set."
    )


def rollback(uri: str) -> dict[str, Any]:
    """Point the registry's production at a version already published (no gate).

    Raises:
        PublishError: ``uri`` is not a published version, or S3 failed.
        PointerMovedError: the pointer moved while this was being done.
    """
    import boto3

    from classifier.registry import POINTER_NAME, read_pointer_state, registry_of, write_pointer

    registry, version = registry_of(uri)
    bucket, prefix = split_uri(uri)
    if not _exists(boto3.client("s3"), bucket, prefix + MANIFEST_FILE):
        raise PublishError(f"{uri} is not a published version (it has no {MANIFEST_FILE}).")
    state = read_pointer_state(registry + POINTER_NAME)
    pointer = write_pointer(registry, version, None, state)
    print(f"{registry}production -> {version} (was {pointer['previous']})")
    return pointer


def _exists(client: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise
    return True


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Upload a model directory to S3 with a SHA-256 manifest.", add_help=add_help
    )
    parser.add_argument(
        "model_dir", type=Path, nargs="?", help="model directory (weights, labels, card)"
    )
    parser.add_argument("uri", nargs="?", help="destination, s3://BUCKET/models/NAME/VERSION/")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a version that is already published (default: refuse)",
    )
    gate = parser.add_argument_group("promotion (a registry's production pointer)")
    gate.add_argument(
        "--promote",
        action="store_true",
        help="publish only if the gate accepts the candidate, then point production at it",
    )
    gate.add_argument("--eval-data", type=Path, help="Food-101-layout folder of the gate's photos")
    gate.add_argument("--eval-split", default="val", help="its split to use (default: val)")
    gate.add_argument(
        "--eval-limit-per-class", type=int, default=None, help="photos a dish (default: all)"
    )
    for flag, default, text in (
        ("--alpha", 0.05, "McNemar significance level for 'worse than production'"),
        ("--not-food-bar", 0.9, "least share of the non-food set called not food"),
        ("--precision-bar", 0.9, "least confident precision (refused only beyond noise)"),
    ):
        gate.add_argument(flag, type=float, default=default, help=f"{text} (default: {default})")
    gate.add_argument(
        "--new-evaluation-set",
        action="store_true",
        help="compare on this evaluation set although production was promoted on another "
        "(default: refuse, so that versions stay comparable)",
    )
    gate.add_argument(
        "--rollback",
        metavar="VERSION_URI",
        help="point production at this published version (no gate) and do nothing else",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    if args.rollback is None and (args.model_dir is None or args.uri is None):
        print("error: give MODEL_DIR and URI (or --rollback VERSION_URI)", file=sys.stderr)
        return 2
    if args.promote and args.eval_data is None:
        print("error: --promote needs --eval-data", file=sys.stderr)
        return 2
    try:
        if args.rollback is not None:
            rollback(args.rollback)
            return 0
        if args.promote:
            return _promote(args)
        manifest = publish(args.model_dir, args.uri, overwrite=args.overwrite)
    except DishLensError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"published {manifest['name']} {manifest['version']} to {args.uri}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    from classifier.registry import GateBars

    bars = GateBars(
        alpha=args.alpha, not_food=args.not_food_bar, confident_precision=args.precision_bar
    )
    try:
        comparison = promote(
            args.model_dir,
            args.uri,
            args.eval_data,
            split=args.eval_split,
            limit_per_class=args.eval_limit_per_class,
            bars=bars,
            overwrite=args.overwrite,
            new_evaluation_set=args.new_evaluation_set,
        )
    except PromotionRefusedError as error:
        print(json.dumps(error.comparison, indent=2))
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(comparison, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
