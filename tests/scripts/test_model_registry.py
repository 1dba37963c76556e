"""The model registry on a loopback moto S3: the production pointer, rollback and the gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
import torch
from safetensors.torch import load_file, save_file

from classifier import ModelDownloadError, load_classifier
from classifier.artifact import CARD_FILE, WEIGHTS_FILE, seal_card, sha256_of
from classifier.errors import PointerMovedError, PublishError
from classifier.predictor import BUNDLED_MODELS
from classifier.registry import (
    GateBars,
    PointerState,
    compare,
    is_pointer,
    mcnemar_p_value,
    read_pointer_state,
    registry_of,
    write_pointer,
)
from tests.classifier.conftest import make_artifact
from tests.scripts.test_model_publishing import get, put, run


def as_version(model_dir: Path, out: Path, version: str, damage: float = 0.0) -> Path:
    """A copy of ``model_dir`` whose card says ``version``; with ``damage``, every weight of the
    network is multiplied by (1 + damage × standard normal noise), the card re-sealed to match."""
    copy = Path(shutil.copytree(model_dir, out))
    card = json.loads((copy / CARD_FILE).read_text())
    if damage:
        generator = torch.Generator().manual_seed(0)
        tensors = load_file(copy / WEIGHTS_FILE)
        for name, tensor in tensors.items():
            if not name.startswith("ood.") and tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator)
                tensors[name] = (tensor.float() * (1 + damage * noise)).to(tensor.dtype)
        save_file(tensors, str(copy / WEIGHTS_FILE))
        card["weights_sha256"] = sha256_of(copy / WEIGHTS_FILE)
    card["version"] = version
    (copy / CARD_FILE).write_text(json.dumps(seal_card(card), indent=2))
    return copy


def test_mcnemar_counts_only_the_photos_the_two_models_disagree_on() -> None:
    assert mcnemar_p_value(0, 0) == 1.0
    assert mcnemar_p_value(10, 0) == pytest.approx(1 / 1024)
    assert mcnemar_p_value(0, 10) == 1.0  # the candidate is better: nothing against it
    assert mcnemar_p_value(3, 2) > 0.05  # a few photos either way is noise


def outcome(right: list[bool], confident: int, confident_right: int, not_food: float) -> dict:
    return {
        "model": "m@1",
        "right": right,
        "accuracy": sum(right) / len(right),
        "confident": confident,
        "confident_right": confident_right,
        "not_food_share": not_food,
    }


def test_the_gate_refuses_worse_beyond_noise_and_below_the_bars() -> None:
    production = outcome([True] * 30, 25, 25, 1.0)
    bars = GateBars()
    close = outcome([True] * 28 + [False] * 2, 25, 24, 0.95)
    assert compare(close, production, bars)["accepted"]
    worse = outcome([True] * 15 + [False] * 15, 10, 10, 0.95)
    decision = compare(worse, production, bars)
    assert not decision["accepted"] and "worse than production" in decision["reasons"][0]
    assert decision["against_production"]["only_production_right"] == 15
    imprecise = outcome([True] * 30, 30, 15, 0.95)
    assert "confident precision 15/30" in compare(imprecise, None, bars)["reasons"][0]
    lets_food_in = outcome([True] * 30, 25, 25, 0.5)
    assert "non-food set" in compare(lets_food_in, production, bars)["reasons"][0]


def test_a_pointer_names_a_version_beside_it() -> None:
    assert is_pointer("s3://b/models/food/production")
    assert is_pointer("s3://b/models/food/production/")
    assert not is_pointer("s3://b/models/food/2026-12-04/")
    assert registry_of("s3://b/models/food/2026-12-04/") == ("s3://b/models/food/", "2026-12-04")
    for bad in ("s3://b/", "s3://b/models/food/production/", "s3://b/models/food/a b/"):
        with pytest.raises(PublishError, match="not a version in a registry"):
            registry_of(bad)


@pytest.fixture
def two_versions(tmp_path: Path) -> tuple[Path, Path]:
    first = make_artifact(tmp_path / "v1")
    return first, as_version(first, tmp_path / "v2", "2")


def test_rollback_moves_the_pointer_and_model_uri_follows_it(
    publish_model, bucket, two_versions, capsys
) -> None:
    registry = f"s3://{bucket}/models/food/"
    with pytest.raises(ModelDownloadError, match="No production model has been promoted"):
        load_classifier(registry + "production")
    for model_dir, version in zip(two_versions, ("1", "2"), strict=True):
        assert run(publish_model, str(model_dir), registry + version + "/") == 0
    assert run(publish_model, "--rollback", registry + "2/") == 0
    assert load_classifier(registry + "production").card["version"] == "2"
    assert run(publish_model, "--rollback", registry + "1/") == 0
    assert load_classifier(registry + "production").card["version"] == "0"  # make_artifact's
    pointer = json.loads(get(bucket, "models/food/production"))
    assert pointer["version"] == "1" and pointer["previous"] == "2"

    assert run(publish_model, "--rollback", registry + "3/") == 1
    assert "not a published version" in capsys.readouterr().err
    assert json.loads(get(bucket, "models/food/production"))["version"] == "1"


def test_two_changes_at_once_cannot_both_move_the_pointer(publish_model, bucket, two_versions):
    registry = f"s3://{bucket}/models/food/"
    for model_dir, version in zip(two_versions, ("1", "2"), strict=True):
        assert run(publish_model, str(model_dir), registry + version + "/") == 0
    # A promotion read "no production yet", then another one created the pointer first.
    empty = read_pointer_state(registry + "production")
    assert empty == PointerState(None, None)
    assert run(publish_model, "--rollback", registry + "2/") == 0
    with pytest.raises(PointerMovedError, match="moved while this change was being made"):
        write_pointer(registry, "1", None, empty)
    # A promotion read production "2", then a rollback moved it to "1" first.
    seen = read_pointer_state(registry + "production")
    assert run(publish_model, "--rollback", registry + "1/") == 0
    with pytest.raises(PointerMovedError):
        write_pointer(registry, "2", None, seen)
    assert json.loads(get(bucket, "models/food/production"))["version"] == "1"
    # With the pointer as it now is, the change goes through.
    current = read_pointer_state(registry + "production")
    assert write_pointer(registry, "2", None, current)["previous"] == "1"


def test_a_pointer_that_is_not_json_is_a_clear_error(bucket) -> None:
    put(bucket, "models/food/production", b"<html>")
    with pytest.raises(ModelDownloadError, match="is not a model pointer"):
        load_classifier(f"s3://{bucket}/models/food/production")
    put(bucket, "models/food/production", json.dumps({"version": "../../x"}).encode())
    with pytest.raises(ModelDownloadError, match="is not a model pointer"):
        load_classifier(f"s3://{bucket}/models/food/production")


def test_promote_needs_an_evaluation_set(publish_model, capsys) -> None:
    assert run(publish_model, "m", "s3://b/models/x/1/", "--promote") == 2
    assert "--promote needs --eval-data" in capsys.readouterr().err
    assert run(publish_model) == 2


def printed_decision(capsys) -> dict:
    """The gate's decision: the JSON object the script prints after its upload lines."""
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


@pytest.mark.needs_data
def test_the_gate_accepts_an_equal_model_and_refuses_a_damaged_one(
    publish_model, bucket, food_mnist, tmp_path, capsys
) -> None:
    registry = f"s3://{bucket}/models/food10/"
    gate = ("--promote", "--eval-data", str(food_mnist), "--eval-limit-per-class", "3")
    production = BUNDLED_MODELS / "food10-lite0"
    assert run(publish_model, str(production), registry + "1/", *gate) == 0
    first = printed_decision(capsys)
    assert first["accepted"] and first["against_production"] is None and first["photos"] == 30

    equal = as_version(production, tmp_path / "equal", "equal")
    assert run(publish_model, str(equal), registry + "2/", *gate) == 0
    decision = printed_decision(capsys)
    assert decision["against_production"]["mcnemar_p_value"] == 1.0
    card = json.loads(get(bucket, "models/food10/2/card.json"))
    assert card["promotion"] == decision  # recorded in the card, which still loads (re-sealed)
    assert load_classifier(registry + "production").card["version"] == "equal"

    damaged = as_version(production, tmp_path / "damaged", "damaged", damage=1.0)
    assert run(publish_model, str(damaged), registry + "3/", *gate) == 1
    refused = printed_decision(capsys)
    assert not refused["accepted"]
    assert any("worse than production" in reason for reason in refused["reasons"])
    assert refused["against_production"]["mcnemar_p_value"] < 0.05
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="models/food10/3/")
    assert listed["KeyCount"] == 0  # a refused candidate is not uploaded
    assert json.loads(get(bucket, "models/food10/production"))["version"] == "2"
    assert load_classifier(registry + "production").card["version"] == "equal"

    # Production went bad (a damaged version rolled out by hand): a better candidate passes.
    assert run(publish_model, str(damaged), registry + "3/") == 0
    assert run(publish_model, "--rollback", registry + "3/") == 0
    capsys.readouterr()
    better = as_version(production, tmp_path / "better", "better")
    assert run(publish_model, str(better), registry + "4/", *gate) == 0
    paired = printed_decision(capsys)["against_production"]
    assert paired["only_candidate_right"] > paired["only_production_right"]
    assert load_classifier(registry + "production").card["version"] == "better"

    # The evaluation set stays fixed: another one is refused unless the change is meant.
    other = ("--promote", "--eval-data", str(food_mnist), "--eval-limit-per-class", "2")
    again = as_version(production, tmp_path / "again", "again")
    assert run(publish_model, str(again), registry + "5/", *other) == 1
    assert "promoted on another evaluation set (30 photos" in capsys.readouterr().err
    assert run(publish_model, str(again), registry + "5/", *other, "--new-evaluation-set") == 0
    pointer = json.loads(get(bucket, "models/food10/production"))
    assert pointer["version"] == "5" and pointer["evaluation_set"]["photos"] == 20


@pytest.mark.needs_data
def test_feedback_flows_from_the_store_to_a_promoted_model(
    publish_model, bucket, food_mnist, tmp_path, capsys
) -> None:
    """Answers stored on S3 by the app's store -> read as training data -> a short fine-tune
    of the production model -> the gate -> the pointer -> load_classifier."""
    from classifier import train
    from tests.classifier.test_cli import train_args
    from tests.classifier.test_train_feedback import feedback_from_shared_photos

    registry = f"s3://{bucket}/models/food10/"
    gate = ("--promote", "--eval-data", str(food_mnist), "--eval-limit-per-class", "3")
    production = BUNDLED_MODELS / "food10-lite0"
    assert run(publish_model, str(production), registry + "1/", *gate) == 0
    capsys.readouterr()

    feedback_from_shared_photos(food_mnist, f"s3://{bucket}/feedback/")
    out = tmp_path / "next"
    recipe = ("--init-from", str(production), "--fix-res", "--frozen-blocks", "16", "--lr", "1e-5")
    extra = ("--extra-data", f"s3://{bucket}/feedback/:2", "--name", "food10-next")
    limit = ("--limit-per-class", "10")  # enough val photos to calibrate the statuses on
    card = train.main(train_args(food_mnist, out, *recipe, *extra, *limit))
    assert card["training"]["sources"][1]["images"] == 4

    assert run(publish_model, str(out), registry + "2/", *gate) == 0
    decision = printed_decision(capsys)
    assert decision["accepted"] and decision["against_production"]["mcnemar_p_value"] > 0.05
    promoted = load_classifier(registry + "production")
    assert promoted.card["name"] == "food10-next"
    assert promoted.card["training"]["sources"][1]["source"] == f"s3://{bucket}/feedback/"
