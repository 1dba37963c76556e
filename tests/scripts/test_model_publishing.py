"""scripts/publish_model.py and scripts/fetch_model.py against a loopback moto S3 server."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3

from classifier.artifact import load_artifact, sha256_of
from classifier.predictor import DEFAULT_MODEL_DIR

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run(script, *argv: str) -> int:
    return script.main(script.get_args_parser().parse_args(list(argv)))


def get(bucket: str, key: str) -> bytes:
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def put(bucket: str, key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def test_round_trip_of_the_bundled_model(publish_model, fetch_model, bucket, tmp_path):
    uri = f"s3://{bucket}/models/default/v1/"
    assert run(publish_model, str(DEFAULT_MODEL_DIR), uri) == 0
    target = tmp_path / "fetched"
    assert run(fetch_model, uri, str(target)) == 0
    for name in ("model.safetensors", "labels.json", "card.json"):
        assert sha256_of(target / name) == sha256_of(DEFAULT_MODEL_DIR / name)
    _, _, labels, card = load_artifact(target)  # the classifier accepts what was fetched
    assert card["weights_sha256"] == sha256_of(target / "model.safetensors")
    assert labels


def test_manifest_lists_each_files_sha256_and_size(publish_model, bucket, small_model, capsys):
    assert run(publish_model, str(small_model), f"s3://{bucket}/models/small/1/") == 0
    manifest = json.loads(get(bucket, "models/small/1/manifest.json"))
    assert manifest["format"] == 1 and (manifest["name"], manifest["version"]) == ("small", "1")
    assert set(manifest["files"]) == {"model.safetensors", "labels.json", "card.json"}
    for name, entry in manifest["files"].items():
        body = (small_model / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
        assert get(bucket, f"models/small/1/{name}") == body
    assert capsys.readouterr().out.count("uploaded ") == 4  # a line per file


def test_a_published_version_is_not_replaced_unless_asked(
    publish_model, bucket, small_model, capsys
):
    uri = f"s3://{bucket}/models/small/1/"
    assert run(publish_model, str(small_model), uri) == 0
    (small_model / "labels.json").write_text(json.dumps({"0": "sushi", "1": "ramen"}))
    assert run(publish_model, str(small_model), uri) == 1
    assert "already published" in capsys.readouterr().err
    assert b"pizza" in get(bucket, "models/small/1/labels.json")
    assert run(publish_model, str(small_model), uri, "--overwrite") == 0
    assert b"sushi" in get(bucket, "models/small/1/labels.json")


def test_weights_that_do_not_match_the_card_are_not_published(
    publish_model, bucket, small_model, capsys
):
    (small_model / "model.safetensors").write_bytes(b"other weights")
    assert run(publish_model, str(small_model), f"s3://{bucket}/models/small/1/") == 1
    assert "does not match the checksum in card.json" in capsys.readouterr().err
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=bucket)


def test_publishing_a_missing_directory_is_a_clear_error(publish_model, bucket, tmp_path, capsys):
    assert run(publish_model, str(tmp_path / "nowhere"), f"s3://{bucket}/models/x/1/") == 1
    assert "is missing" in capsys.readouterr().err


def test_a_tampered_file_is_refused_and_nothing_is_kept(
    publish_model, fetch_model, bucket, small_model, tmp_path, capsys
):
    uri = f"s3://{bucket}/models/small/1/"
    assert run(publish_model, str(small_model), uri) == 0
    put(bucket, "models/small/1/labels.json", b'{"0": "poison", "1": "ramen"}')
    target = tmp_path / "fetched"
    assert run(fetch_model, uri, str(target)) == 1
    error = capsys.readouterr().err
    assert "labels.json does not match manifest.json" in error and "refusing" in error
    assert not target.exists()
    assert not list(tmp_path.glob(".fetch-*"))  # the staging folder is gone too


def test_weights_swapped_with_a_rewritten_manifest_are_refused_by_the_card_check(
    publish_model, fetch_model, bucket, small_model, tmp_path, capsys
):
    uri = f"s3://{bucket}/models/small/1/"
    assert run(publish_model, str(small_model), uri) == 0
    other = b"weights of some other model"
    manifest = json.loads(get(bucket, "models/small/1/manifest.json"))
    manifest["files"]["model.safetensors"] = {
        "sha256": hashlib.sha256(other).hexdigest(),
        "size": len(other),
    }
    put(bucket, "models/small/1/model.safetensors", other)
    put(bucket, "models/small/1/manifest.json", json.dumps(manifest).encode())
    assert run(fetch_model, uri, str(tmp_path / "fetched")) == 1
    assert "does not match the checksum in card.json" in capsys.readouterr().err
    assert not (tmp_path / "fetched").exists()


def test_a_missing_object_is_a_clear_error(
    publish_model, fetch_model, bucket, small_model, tmp_path, capsys
):
    uri = f"s3://{bucket}/models/small/1/"
    assert run(publish_model, str(small_model), uri) == 0
    boto3.client("s3").delete_object(Bucket=bucket, Key="models/small/1/labels.json")
    assert run(fetch_model, uri, str(tmp_path / "fetched")) == 1
    assert f"{uri}labels.json is listed in manifest.json but missing from S3" in (
        capsys.readouterr().err
    )


def test_a_prefix_without_a_manifest_is_a_clear_error(fetch_model, bucket, tmp_path, capsys):
    put(bucket, "models/half/1/card.json", b"{}")  # an upload that never finished
    assert run(fetch_model, f"s3://{bucket}/models/half/1/", str(tmp_path / "m")) == 1
    assert "No manifest.json at" in capsys.readouterr().err
    assert run(fetch_model, "https://example.com/model/", str(tmp_path / "m")) == 1
    assert "is not an s3://bucket/prefix/ URI" in capsys.readouterr().err


def test_a_manifest_naming_paths_outside_the_folder_is_refused(
    fetch_model, bucket, tmp_path, capsys
):
    entry = {"sha256": "0" * 64, "size": 1}
    manifest = {"format": 1, "files": {"card.json": entry, "../../etc/cron.d/x": entry}}
    put(bucket, "models/evil/1/manifest.json", json.dumps(manifest).encode())
    assert run(fetch_model, f"s3://{bucket}/models/evil/1/", str(tmp_path / "m")) == 1
    assert "unsafe file name" in capsys.readouterr().err


def test_a_folder_that_holds_files_is_kept_unless_forced(
    publish_model, fetch_model, bucket, small_model, tmp_path, capsys
):
    uri = f"s3://{bucket}/models/small/1/"
    assert run(publish_model, str(small_model), uri) == 0
    target = tmp_path / "fetched"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    assert run(fetch_model, uri, str(target)) == 1
    assert "is not empty" in capsys.readouterr().err
    assert run(fetch_model, uri, str(target), "--force") == 0
    assert (target / "notes.txt").read_text() == "mine"
    assert json.loads((target / "manifest.json").read_text())["name"] == "small"


def test_the_command_line_exits_non_zero_on_a_mismatch(
    publish_model, bucket, small_model, tmp_path
):
    uri = f"s3://{bucket}/models/small/1/"
    assert run(publish_model, str(small_model), uri) == 0
    put(bucket, "models/small/1/card.json", b'{"weights_sha256": "0"}')
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "fetch_model.py"), uri, str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "card.json does not match" in result.stderr
