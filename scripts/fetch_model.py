"""Download a published model from S3 and verify it before anything uses it.

    python scripts/fetch_model.py s3://BUCKET/models/food101-lite0/2026-11-23/ model

Reads the version's ``manifest.json`` (written by ``scripts/publish_model.py``), downloads each
file it lists into a staging folder beside DIR, and checks every file's SHA-256 and size
against the manifest and the weights against the checksum in ``card.json``. Only a model that
passes every check is moved into DIR (with its manifest); anything else is refused.

Exit status: 0 fetched and verified, 1 refused or failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python scripts/fetch_model.py`
    sys.path.insert(0, str(ROOT))

from classifier.artifact import CARD_FILE, WEIGHTS_FILE, read_json, sha256_of  # noqa: E402
from classifier.errors import ChecksumMismatchError, ModelDownloadError  # noqa: E402
from classifier.s3 import split_uri  # noqa: E402
from dishlens.errors import DishLensError  # noqa: E402

MANIFEST_FILE = "manifest.json"
_MISSING = {"404", "NoSuchKey", "NotFound"}


def fetch(uri: str, target: Path, *, force: bool = False) -> dict[str, Any]:
    """Download the model at ``uri`` into ``target`` and verify it; returns the manifest.

    Raises:
        ModelDownloadError: no manifest, a listed file is missing, S3 refused a request, or
            ``target`` already holds files (and ``force`` is false).
        ChecksumMismatchError: a file differs from the manifest, or the weights from the card.
    """
    import boto3

    bucket, prefix = split_uri(uri)
    client = boto3.client("s3")
    manifest = _read_manifest(client, bucket, prefix, uri)
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ModelDownloadError(f"{target} is not empty; pass --force to replace its files.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
    try:
        for name, expected in manifest["files"].items():
            path = staging / name
            _download(client, bucket, prefix + name, path, f"{uri}{name}")
            digest, size = sha256_of(path), path.stat().st_size
            if digest != expected["sha256"] or size != expected["size"]:
                raise ChecksumMismatchError(
                    f"{uri}{name} does not match {MANIFEST_FILE} (sha256 {digest[:16]}, "
                    f"{size:,} bytes; expected {expected['sha256'][:16]}, "
                    f"{expected['size']:,} bytes): it was changed or corrupted; refusing it.",
                    f"{uri}{name}",
                )
            print(f"verified {name}: {size:,} bytes, sha256 {digest[:16]}")
        _check_card(staging, manifest, uri)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        target.mkdir(exist_ok=True)
        for name in [*manifest["files"], MANIFEST_FILE]:
            os.replace(staging / name, target / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _read_manifest(client: Any, bucket: str, prefix: str, uri: str) -> dict[str, Any]:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body = client.get_object(Bucket=bucket, Key=prefix + MANIFEST_FILE)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            raise ModelDownloadError(
                f"No {MANIFEST_FILE} at {uri}: not a model published with "
                "scripts/publish_model.py, or its upload did not finish."
            ) from error
        raise ModelDownloadError(f"Could not read {uri}{MANIFEST_FILE}: {error}") from error
    except (Boto3Error, BotoCoreError) as error:
        raise ModelDownloadError(f"Could not read {uri}{MANIFEST_FILE}: {error}") from error
    try:
        manifest = json.loads(body)
        files = manifest["files"]
        entries_ok = all(
            isinstance(e, dict)
            and isinstance(e.get("sha256"), str)
            and isinstance(e.get("size"), int)
            for e in files.values()
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        entries_ok = False
    if not entries_ok:
        raise ModelDownloadError(f"{uri}{MANIFEST_FILE} is not a valid model manifest.")
    for name in files:
        if Path(name).name != name or name in {"", ".", "..", MANIFEST_FILE}:
            raise ModelDownloadError(f"{uri}{MANIFEST_FILE} lists an unsafe file name: {name!r}.")
    if CARD_FILE not in files:
        raise ModelDownloadError(f"{uri}{MANIFEST_FILE} does not list {CARD_FILE}.")
    return manifest


def _download(client: Any, bucket: str, key: str, path: Path, uri: str) -> None:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.download_file(bucket, key, str(path))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            raise ModelDownloadError(
                f"{uri} is listed in {MANIFEST_FILE} but missing from S3."
            ) from error
        raise ModelDownloadError(f"Could not download {uri}: {error}") from error
    except (Boto3Error, BotoCoreError) as error:
        raise ModelDownloadError(f"Could not download {uri}: {error}") from error


def _check_card(model_dir: Path, manifest: dict[str, Any], uri: str) -> None:
    """The weights must also match the checksum the card records (a rewritten manifest is
    not enough to pass other weights off as this model)."""
    card = read_json(model_dir / CARD_FILE)
    weights = card.get("weights_file", WEIGHTS_FILE)
    if weights not in manifest["files"]:
        raise ModelDownloadError(f"{uri}{MANIFEST_FILE} does not list the weights {weights}.")
    if sha256_of(model_dir / weights) != card.get("weights_sha256"):
        raise ChecksumMismatchError(
            f"{uri}{weights} does not match the checksum in {CARD_FILE}; refusing the model.",
            f"{uri}{weights}",
        )
    print(f"verified {weights} against {CARD_FILE}")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Download a published model from S3 and verify every file.", add_help=add_help
    )
    parser.add_argument("uri", help="published version, s3://BUCKET/models/NAME/VERSION/")
    parser.add_argument("target", type=Path, help="directory to put the verified model in")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace the model's files in a directory that is not empty (default: refuse)",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    try:
        manifest = fetch(args.uri, args.target, force=args.force)
    except DishLensError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"fetched {manifest.get('name')} {manifest.get('version')} into {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
