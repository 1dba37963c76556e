"""FeedbackStore: a local folder and an S3 prefix (the `aws` fixture: moto on loopback)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pytest
from PIL import Image

from dishlens.errors import DishLensError
from dishlens.feedback import (
    MAX_SIDE,
    FeedbackError,
    FeedbackRecord,
    FeedbackStore,
    InvalidFeedbackError,
    encode_jpeg,
)
from dishlens.settings import load_settings


def _record(**overrides) -> FeedbackRecord:
    values = dict(
        predicted_label="bibimbap",
        predicted_probability=0.91234,
        status="confident",
        correct=False,
        correction="beet_salad",
        alternatives=[("beet_salad", 0.05), ("baklava", 0.01)],
        model_name="dishlens-food",
        model_version="2026-11-23",
        source="upload",
    )
    return FeedbackRecord(**{**values, **overrides})


def _photo_with_metadata(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A JPEG-decoded photo that carries EXIF (camera, GPS) and a comment, like a phone photo."""
    image = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS IFD
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, comment=b"secret place")
    buffer.seek(0)
    return Image.open(buffer)


def _assert_clean_jpeg(data: bytes) -> Image.Image:
    saved = Image.open(io.BytesIO(data))
    assert saved.format == "JPEG"
    assert saved.mode == "RGB"
    assert not saved.getexif()
    assert "exif" not in saved.info
    assert "comment" not in saved.info
    assert "icc_profile" not in saved.info
    return saved


def test_photo_has_no_metadata_after_encoding() -> None:
    photo = _photo_with_metadata()
    assert photo.getexif()  # the fixture really carries EXIF
    saved = _assert_clean_jpeg(encode_jpeg(photo))
    assert saved.size == (64, 48)


def test_large_photo_is_scaled_down_keeping_its_shape() -> None:
    saved = _assert_clean_jpeg(encode_jpeg(Image.new("RGB", (3000, 1500), "white")))
    assert saved.size == (MAX_SIDE, MAX_SIDE // 2)


def test_local_folder_gets_photo_and_record(tmp_path: Path) -> None:
    store = FeedbackStore(str(tmp_path / "feedback"))
    record = _record()
    key = store.save(_photo_with_metadata(), record)

    record_path = tmp_path / "feedback" / key
    stored = json.loads(record_path.read_text())
    assert stored["predicted_label"] == "bibimbap"
    assert stored["predicted_probability"] == 0.9123
    assert stored["correct"] is False
    assert stored["correction"] == "beet_salad"
    assert stored["model_version"] == "2026-11-23"
    assert stored["alternatives"][0] == {"label": "beet_salad", "probability": 0.05}
    assert stored["created"].startswith(record.created[:10])
    assert stored["image"] == f"{record.id}.jpg"
    _assert_clean_jpeg((record_path.parent / stored["image"]).read_bytes())
    assert not list(record_path.parent.glob(".*.part"))


def test_store_follows_the_feedback_uri_setting(tmp_path: Path) -> None:
    settings = load_settings({"FEEDBACK_URI": str(tmp_path / "elsewhere")})
    key = FeedbackStore.from_settings(settings).save(Image.new("RGB", (8, 8)), _record())
    assert (tmp_path / "elsewhere" / key).is_file()


def test_unwritable_folder_raises_feedback_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(FeedbackError) as caught:
        FeedbackStore(str(blocker)).save(Image.new("RGB", (8, 8)), _record())
    assert isinstance(caught.value, DishLensError)
    assert isinstance(caught.value, OSError)
    assert "could not be saved" in str(caught.value)
    assert str(blocker) not in str(caught.value)  # the path stays out of the user's message
    assert caught.value.uri == str(blocker)


def test_s3_prefix_gets_photo_and_record(aws: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="feedback-store-test")
    store = FeedbackStore("s3://feedback-store-test/runs/v1")
    key = store.save(_photo_with_metadata(), _record(correct=True, correction=None))

    body = s3.get_object(Bucket="feedback-store-test", Key=f"runs/v1/{key}")["Body"].read()
    stored = json.loads(body)
    assert stored["correct"] is True
    assert stored["correction"] is None
    image_key = f"runs/v1/{key.rsplit('/', 1)[0]}/{stored['image']}"
    photo = s3.get_object(Bucket="feedback-store-test", Key=image_key)
    assert photo["ContentType"] == "image/jpeg"
    _assert_clean_jpeg(photo["Body"].read())


def test_missing_bucket_raises_feedback_error(aws: str) -> None:
    with pytest.raises(FeedbackError):
        FeedbackStore("s3://no-such-bucket/").save(Image.new("RGB", (8, 8)), _record())


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "../../../escaped"},
        {"id": "a/b"},
        {"id": ""},  # replaced by a generated id: allowed
        {"created": "../../x"},
        {"created": "2026-11-23/../../x"},
    ],
)
def test_ids_and_dates_cannot_leave_the_feedback_folder(tmp_path: Path, fields: dict) -> None:
    root = tmp_path / "feedback"
    try:
        record = _record(**fields)
    except InvalidFeedbackError as error:
        assert isinstance(error, ValueError) and isinstance(error, DishLensError)
    else:
        assert fields == {"id": ""}
        FeedbackStore(str(root)).save(Image.new("RGB", (8, 8)), record)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and root not in p.parents]
    assert outside == []


def test_a_reused_id_never_overwrites(tmp_path: Path) -> None:
    store = FeedbackStore(str(tmp_path))
    first = _record(id="same-id", created="2026-11-23T10:00:00+00:00")
    key = store.save(Image.new("RGB", (8, 8)), first)
    before = (tmp_path / key).read_bytes()
    with pytest.raises(FeedbackError):
        store.save(
            Image.new("RGB", (8, 8)), _record(id="same-id", correct=True, created=first.created)
        )
    assert (tmp_path / key).read_bytes() == before
    assert [p.name for p in tmp_path.rglob(".*.part")] == []


def test_a_reused_id_never_overwrites_on_s3(aws: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="feedback-reuse")
    store = FeedbackStore("s3://feedback-reuse/")
    record = _record(id="same-id", created="2026-11-23T10:00:00+00:00")
    key = store.save(Image.new("RGB", (8, 8)), record)
    with pytest.raises(FeedbackError):
        store.save(
            Image.new("RGB", (8, 8)), _record(id="same-id", correct=True, created=record.created)
        )
    assert (
        json.loads(s3.get_object(Bucket="feedback-reuse", Key=key)["Body"].read())["correct"]
        is False
    )
