"""Publish a model directory to S3 with a SHA-256 manifest.

    python scripts/publish_model.py models/food101-lite0 s3://BUCKET/models/food101-lite0/2026-11-23/

The artifact's files (weights, ``labels.json``, ``card.json``) go up first and
``manifest.json`` (each file's SHA-256 and size) last, so a version without a manifest is an
unfinished upload, which ``scripts/fetch_model.py`` refuses. Only an artifact whose weights
match its card is published, and a published version is never replaced unless asked.

Exit status: 0 published, 1 refused or failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python scripts/publish_model.py`
    sys.path.insert(0, str(ROOT))

from classifier.artifact import CARD_FILE, LABELS_FILE, WEIGHTS_FILE, read_json, sha256_of  # noqa: E402
from classifier.errors import (  # noqa: E402
    ChecksumMismatchError,
    ModelNotFoundError,
    PublishError,
)
from classifier.s3 import split_uri  # noqa: E402
from dishlens.errors import DishLensError  # noqa: E402

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
    parser.add_argument("model_dir", type=Path, help="model directory (weights, labels, card)")
    parser.add_argument("uri", help="destination, s3://BUCKET/models/NAME/VERSION/")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a version that is already published (default: refuse)",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    try:
        manifest = publish(args.model_dir, args.uri, overwrite=args.overwrite)
    except DishLensError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"published {manifest['name']} {manifest['version']} to {args.uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
