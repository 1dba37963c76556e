"""Classify photos from the command line: files, folders, URL lists or an S3 prefix.

    python -m classifier.predict photo.jpg holiday/ urls.txt s3://bucket/photos/ --format csv

One output line per photo, in input order (JSON lines by default). A photo that cannot be read
is reported on its own line with an ``error`` and never stops the run; the exit code is 1 if
any photo failed, else 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from PIL import Image
from tqdm import tqdm

from classifier.errors import InputError
from classifier.predictor import Classifier, Prediction, load_classifier
from dishlens.errors import DishLensError
from dishlens.settings import exit_on_bad_setting

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".heic", ".heif"}
CSV_FIELDS = ("input", "status", "label", "display_name", "probability", "error")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One photo to classify: ``kind`` is ``file``, ``url`` or ``s3``."""

    kind: str
    source: str


def expand(inputs: Iterable[str]) -> Iterator[Item]:
    """Turn command-line arguments into photos, keeping their order."""
    for value in inputs:
        if value.startswith(("http://", "https://")):
            yield Item("url", value)
        elif value.startswith("s3://"):
            yield from _s3_items(value)
        elif Path(value).is_dir():
            for path in sorted(Path(value).rglob("*")):
                if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                    yield Item("file", str(path))
        elif Path(value).suffix.lower() == ".txt" and Path(value).is_file():
            for line in Path(value).read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    yield from expand([line.strip()])
        else:
            yield Item("file", value)


def _s3_items(uri: str) -> Iterator[Item]:
    import boto3

    from classifier.s3 import split_uri

    bucket, prefix = split_uri(uri)
    pages = (
        boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )
    for page in pages:
        for entry in page.get("Contents", []):
            if Path(entry["Key"]).suffix.lower() in IMAGE_SUFFIXES:
                yield Item("s3", f"s3://{bucket}/{entry['Key']}")


def load_image(item: Item) -> Image.Image:
    """Decode one photo through the same intake path the app uses.

    Raises:
        DishLensError: the photo cannot be fetched or decoded (the message says why).
    """
    import intake

    if item.kind == "url":
        return intake.image_from_url(item.source)
    return intake.image_from_bytes(_read_bytes(item), filename=Path(item.source).name)


def _read_bytes(item: Item) -> bytes:
    if item.kind == "s3":
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        from classifier.s3 import split_uri

        bucket, key = split_uri(item.source)
        try:
            return boto3.client("s3").get_object(Bucket=bucket, Key=key.rstrip("/"))["Body"].read()
        except (BotoCoreError, ClientError) as error:
            logger.error("S3 download of %s failed: %s", item.source, error)
            raise InputError(
                f"Could not download {item.source}; check the key and the AWS credentials "
                "(the log has S3's answer)."
            ) from error
    try:
        return Path(item.source).read_bytes()
    except OSError as error:
        raise InputError(f"Could not read {item.source}: {error.strerror or error}") from error


def record(item: Item, prediction: Prediction | None, error: Exception | None) -> dict[str, Any]:
    if error is not None:
        return {"input": item.source, "error": str(error), "error_type": type(error).__name__}
    assert prediction is not None
    return {
        "input": item.source,
        "status": prediction.status,
        "label": prediction.best.label,
        "display_name": prediction.best.display_name,
        "probability": round(prediction.best.probability, 4),
        "top": [{"label": d.label, "probability": round(d.probability, 4)} for d in prediction.top],
    }


def classify(
    classifier: Classifier, items: list[Item], batch_size: int, top_k: int, progress: bool = True
) -> Iterator[dict[str, Any]]:
    """Records in input order; decoding failures become error records."""
    bar = tqdm(total=len(items), unit="photo", disable=not progress, file=sys.stderr)
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        images: dict[int, Image.Image] = {}
        errors: dict[int, Exception] = {}
        for i, item in enumerate(batch):
            try:
                images[i] = load_image(item)
            except DishLensError as error:
                errors[i] = error
        predictions = iter(
            classifier.predict_batch(list(images.values()), top_k=top_k) if images else []
        )
        for i, item in enumerate(batch):
            yield record(item, None if i in errors else next(predictions), errors.get(i))
        bar.update(len(batch))
    bar.close()


def write(records: Iterable[dict[str, Any]], stream: IO[str], fmt: str) -> int:
    """Write records; returns how many were errors."""
    failures = 0
    writer = None
    if fmt == "csv":
        writer = csv.DictWriter(stream, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
    for row in records:
        failures += "error" in row
        if writer:
            writer.writerow(row)
        else:
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        stream.flush()
    return failures


def main(args: argparse.Namespace) -> int:
    classifier = load_classifier(args.model)
    items = list(expand(args.inputs))
    records = classify(classifier, items, args.batch_size, args.top_k, not args.quiet)
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as stream:
            failures = write(records, stream, args.format)
    else:
        failures = write(records, sys.stdout, args.format)
    if failures:
        print(f"{failures} of {len(items)} photos could not be classified.", file=sys.stderr)
    return 1 if failures else 0


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Classify food photos.", add_help=add_help)
    parser.add_argument(
        "inputs",
        nargs="+",
        help="photo files, folders, .txt lists of URLs or "
        "paths, http(s) URLs, or s3://bucket/prefix/",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="model directory or s3:// URI (default: MODEL_URI, else the bundled model)",
    )
    parser.add_argument(
        "--format", choices=("jsonl", "csv"), default="jsonl", help="output format (default: jsonl)"
    )
    parser.add_argument("--output", default=None, help="write here instead of standard output")
    parser.add_argument(
        "--batch-size", type=int, default=16, help="photos per forward pass (default: 16)"
    )
    parser.add_argument("--top-k", type=int, default=3, help="dishes per photo (default: 3)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


if __name__ == "__main__":
    with exit_on_bad_setting("classifier.predict"):
        sys.exit(main(get_args_parser().parse_args()))
