import boto3
import pytest

from classifier import ChecksumMismatchError, ModelDownloadError, load_classifier
from classifier.artifact import ARTIFACT_FILES


def upload(model_dir, bucket: str, prefix: str, tamper: bool = False) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    for name in ARTIFACT_FILES:
        body = (model_dir / name).read_bytes()
        if tamper and name == "model.safetensors":
            body = body[:-1] + bytes([body[-1] ^ 1])
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=body)


def test_s3_model_is_downloaded_once_and_verified(aws, artifact_dir, tmp_path, monkeypatch):
    upload(artifact_dir, "models-ok", "food/1/")
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODEL_CACHE_DIR", str(cache))
    first = load_classifier("s3://models-ok/food/1/")
    cached = cache / "models-ok" / "food" / "1" / "model.safetensors"
    assert cached.is_file()
    stamp = cached.stat().st_mtime_ns
    second = load_classifier("s3://models-ok/food/1")
    assert cached.stat().st_mtime_ns == stamp  # reused, not downloaded again
    assert first.card["weights_sha256"] == second.card["weights_sha256"]


def test_tampered_s3_model_is_refused(aws, artifact_dir, tmp_path, monkeypatch):
    upload(artifact_dir, "models-bad", "food/1/", tamper=True)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ChecksumMismatchError, match="failed its checksum"):
        load_classifier("s3://models-bad/food/1/")
    assert not (tmp_path / "cache" / "models-bad" / "food" / "1").exists()


def test_missing_s3_model_is_a_clear_error(aws):
    boto3.client("s3").create_bucket(Bucket="models-empty")
    with pytest.raises(ModelDownloadError, match="Nothing was found at s3://models-empty/x/"):
        load_classifier("s3://models-empty/x/")
    with pytest.raises(ModelDownloadError, match="Could not download"):
        load_classifier("s3://no-such-bucket/x/")


@pytest.mark.parametrize("key", ["m/../../../escaped.txt", "m//double", "m/./here"])
def test_s3_keys_cannot_leave_the_cache(aws, artifact_dir, tmp_path, monkeypatch, key):
    upload(artifact_dir, "models-sly", "m/")
    boto3.client("s3").put_object(Bucket="models-sly", Key=key, Body=b"pwned")
    cache = tmp_path / "deep" / "cache"
    monkeypatch.setenv("MODEL_CACHE_DIR", str(cache))
    with pytest.raises(ModelDownloadError, match="outside the download folder"):
        load_classifier("s3://models-sly/m/")
    written = [p for p in tmp_path.rglob("*") if p.is_file() and artifact_dir not in p.parents]
    assert written == []  # refused before anything was downloaded


def test_s3_failures_keep_boto_text_out_of_the_message(aws):
    with pytest.raises(ModelDownloadError) as caught:
        load_classifier("s3://no-such-bucket-either/x/")
    assert "NoSuchBucket" not in str(caught.value) and "botocore" not in str(caught.value)
    assert "NoSuchBucket" in repr(caught.value.__cause__)
