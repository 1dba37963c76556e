"""Small S3 helpers (boto3; ``AWS_ENDPOINT_URL`` points them at a local server in tests).

Object keys are untrusted names: a key such as ``m/../../../x`` under a model prefix would
write outside the download folder, so every key must name a file inside it, or the download
is refused before anything is written.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from classifier.errors import ModelDownloadError

logger = logging.getLogger(__name__)


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``("bucket", "a/b/")``."""
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise ModelDownloadError(f"{uri!r} is not an s3://bucket/prefix/ URI.")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def contained(target: Path, relative: str) -> Path:
    """``target / relative``, refusing a name that would leave ``target``.

    Raises:
        ModelDownloadError: ``relative`` is absolute or has an empty, ``.`` or ``..`` part.
    """
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ModelDownloadError(
            "An object in that S3 prefix has a name that points outside the download folder; "
            "nothing was downloaded."
        )
    return target.joinpath(*parts)


def download_prefix(uri: str, target: Path) -> list[Path]:
    """Copy every object under ``uri`` into ``target``; returns the local paths.

    Raises:
        ModelDownloadError: S3 refused or failed (the detail goes to the log), a key would
            leave ``target``, or nothing is there.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_uri(uri)
    client = boto3.client("s3")
    try:
        keys = [
            item["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for item in page.get("Contents", [])
            if item["Key"][len(prefix) :] and not item["Key"].endswith("/")
        ]
        locals_ = [contained(target, key[len(prefix) :]) for key in keys]
        downloaded = []
        for key, local in zip(keys, locals_, strict=True):
            local.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(local))
            downloaded.append(local)
    except (BotoCoreError, ClientError) as error:
        raise download_failed(uri, error) from error
    if not downloaded:
        raise ModelDownloadError(f"Nothing was found at {uri}.")
    return downloaded


def download_object(uri: str, local: Path) -> Path:
    """Copy the one object ``uri`` names to ``local``; returns ``local``.

    Raises:
        ModelDownloadError: S3 refused or failed (the detail goes to the log).
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_uri(uri)
    try:
        boto3.client("s3").download_file(bucket, key.rstrip("/"), str(local))
    except (BotoCoreError, ClientError) as error:
        raise download_failed(uri, error) from error
    return local


def download_failed(uri: str, error: Exception) -> ModelDownloadError:
    """The error people see for a failed download; S3's own answer goes to the log only."""
    logger.error("S3 download of %s failed: %s", uri, error)
    return ModelDownloadError(
        f"Could not download {uri}; check the bucket, the prefix and the AWS credentials "
        "(the log has S3's answer)."
    )
