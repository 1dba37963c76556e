"""Store "Right dish?" answers so that a later training run can learn from them.

Each answer is two objects side by side: the photo, re-encoded as a JPEG with every piece of
metadata (EXIF, GPS, ICC, comments) dropped, and a JSON record of what the model said and what
the person answered. Where they go is the ``FEEDBACK_URI`` setting: a local folder (default
``feedback/``) or ``s3://bucket/prefix/`` (boto3, which honours ``AWS_ENDPOINT_URL``).

Layout, under the folder or prefix::

    2026-11-23/20261123T171502Z-3f9c2a1b.jpg
    2026-11-23/20261123T171502Z-3f9c2a1b.json

The JSON record is written after the photo, so every record names a photo that exists. A
record's ``id`` and ``created`` become those names, so both are checked (letters, digits, ``-``
and ``_``; an ISO date) and nothing is ever overwritten: a reused id is refused.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from dishlens.errors import FeedbackError, InvalidFeedbackError
from dishlens.settings import Settings, get_settings

MAX_SIDE = 1024
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
JPEG_QUALITY = 90
NOT_FOOD = "not_food"
OTHER_DISH = "other_dish"


@dataclass(frozen=True)
class FeedbackRecord:
    """One answer to "Right dish?".

    ``correct`` is the person's yes or no. ``correction`` is the label they picked when the
    answer was no: one of the model's labels, :data:`NOT_FOOD`, :data:`OTHER_DISH`, or ``None``
    when they did not say.
    """

    predicted_label: str
    predicted_probability: float
    status: str
    correct: bool
    correction: str | None = None
    alternatives: Sequence[tuple[str, float]] = ()
    model_name: str = ""
    model_version: str = ""
    source: str = ""
    id: str = ""
    created: str = ""

    def __post_init__(self) -> None:
        now = datetime.now(UTC)
        if not self.created:
            object.__setattr__(self, "created", now.isoformat(timespec="seconds"))
        if not self.id:
            object.__setattr__(self, "id", f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}")
        if not _ID.fullmatch(self.id):
            raise InvalidFeedbackError(
                "A feedback id may hold only letters, digits, '-' and '_' (at most 64)."
            )
        try:
            datetime.fromisoformat(self.created)
        except ValueError:
            raise InvalidFeedbackError(
                "A feedback record's 'created' must be an ISO date."
            ) from None

    def to_json(self, image_name: str) -> dict[str, Any]:
        record = asdict(self)
        record["alternatives"] = [
            {"label": label, "probability": round(probability, 4)}
            for label, probability in self.alternatives
        ]
        record["predicted_probability"] = round(self.predicted_probability, 4)
        record["image"] = image_name
        record["schema"] = 1
        return record


class _Backend(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...


class FeedbackStore:
    """Write feedback to a local folder or an S3 prefix.

    Args:
        uri: a folder path or ``s3://bucket/prefix/``.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._backend: _Backend = _S3Backend(uri) if uri.startswith("s3://") else _LocalBackend(uri)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> FeedbackStore:
        settings = settings or get_settings()
        return cls(settings.feedback_uri)

    def save(self, image: Image.Image, record: FeedbackRecord) -> str:
        """Store the photo and its record; returns the key of the JSON record.

        Raises:
            FeedbackError: the folder or bucket could not be written.
        """
        day = datetime.fromisoformat(record.created).strftime("%Y-%m-%d")
        image_key = f"{day}/{record.id}.jpg"
        record_key = f"{day}/{record.id}.json"
        body = json.dumps(record.to_json(image_key.rsplit("/", 1)[1]), indent=2).encode()
        try:
            self._backend.put(image_key, encode_jpeg(image), "image/jpeg")
            self._backend.put(record_key, body, "application/json")
        except Exception as error:  # boto3 and the file system raise many kinds
            raise FeedbackError(self.uri) from error
        return record_key


def encode_jpeg(image: Image.Image) -> bytes:
    """A clean JPEG of ``image``: RGB, at most :data:`MAX_SIDE` pixels a side, no metadata."""
    rgb = image.convert("RGB")
    rgb.thumbnail((MAX_SIDE, MAX_SIDE))
    # A fresh image from raw pixels carries no ``info`` (EXIF, ICC profile, comments, XMP).
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


class _LocalBackend:
    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write, then link into place: a reader never sees half a file, and an existing file
        # (a reused id) makes the link fail instead of being replaced.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.link(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)


class _S3Backend:
    def __init__(self, uri: str) -> None:
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise FeedbackError(uri)
        self.uri = uri
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self._client: Any = None

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        # IfNoneMatch: S3 refuses (412) to replace an object that exists: a reused id.
        self._client.put_object(
            Bucket=self.bucket,
            Key=self.prefix + key,
            Body=data,
            ContentType=content_type,
            IfNoneMatch="*",
        )
