"""Small S3 helpers (boto3; ``AWS_ENDPOINT_URL`` points them at a local server in tests)."""

from __future__ import annotations

from pathlib import Path

from classifier.errors import ModelDownloadError


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``("bucket", "a/b/")``."""
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise ModelDownloadError(f"{uri!r} is not an s3://bucket/prefix/ URI.")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def download_prefix(uri: str, target: Path) -> list[Path]:
    """Copy every object under ``uri`` into ``target``; returns the local paths."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_uri(uri)
    client = boto3.client("s3")
    downloaded = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :]
                if not relative or relative.endswith("/"):
                    continue
                local = target / relative
                local.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, item["Key"], str(local))
                downloaded.append(local)
    except (BotoCoreError, ClientError) as error:
        raise ModelDownloadError(f"Could not download {uri}: {error}") from error
    if not downloaded:
        raise ModelDownloadError(f"Nothing was found at {uri}.")
    return downloaded
