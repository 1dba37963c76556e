import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from classifier import (
    ChecksumMismatchError,
    LabelMismatchError,
    ModelArtifactError,
    ModelNotFoundError,
    load_classifier,
    load_model_info,
)
from classifier.artifact import WEIGHTS_FILE, check_card, load_artifact, seal_card, sha256_of
from classifier.predictor import BUNDLED_MODELS, DEFAULT_MODEL_DIR, resolve_model_dir
from dishlens.settings import load_settings
from tests.classifier.conftest import LABELS


def photo(color=(200, 120, 40), size=(320, 240)) -> Image.Image:
    return Image.new("RGB", size, color)


def test_round_trip_keeps_labels_card_and_outputs(artifact_dir: Path) -> None:
    model, _scorer, labels, card = load_artifact(artifact_dir)
    assert list(labels) == LABELS
    assert card["weights_sha256"] == sha256_of(artifact_dir / WEIGHTS_FILE)
    float32 = load_settings({"INFERENCE_PRECISION": "float32"})
    classifier = load_classifier(str(artifact_dir), settings=float32)
    prediction = classifier.predict(photo(), top_k=3)
    assert [d.label for d in prediction.top] != []
    assert sorted(d.label for d in prediction.top) == sorted(LABELS)
    probabilities = [d.probability for d in prediction.top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
    # The fused inference network gives what the stored float16 weights give unfused.
    model.eval()
    x = classifier._preset(photo())[None]
    with torch.no_grad():
        expected = torch.softmax(model(x), 1)[0].max().item()
    assert prediction.best.probability == pytest.approx(expected, abs=1e-4)
    # bfloat16 (the default on CPUs that have it) rounds, and stays close.
    bfloat16 = load_settings({"INFERENCE_PRECISION": "bfloat16"})
    rounded = load_classifier(str(artifact_dir), settings=bfloat16).predict(photo(), top_k=3)
    assert rounded.best.probability == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize("load", [load_classifier, load_model_info], ids=["network", "info"])
def test_checksum_mismatch_names_the_file(load, artifact_dir: Path) -> None:
    weights = artifact_dir / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match=WEIGHTS_FILE) as caught:
        load(str(artifact_dir))
    assert caught.value.path == str(weights)


@pytest.mark.parametrize("load", [load_classifier, load_model_info], ids=["network", "info"])
def test_truncated_weights_are_refused(load, artifact_dir: Path) -> None:
    weights = artifact_dir / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ChecksumMismatchError, match="corrupt, truncated"):
        load(str(artifact_dir))


@pytest.mark.parametrize("load", [load_classifier, load_model_info], ids=["network", "info"])
def test_truncated_weights_with_matching_card_still_fail_clearly(load, artifact_dir: Path) -> None:
    weights = artifact_dir / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    card_path = artifact_dir / "card.json"
    card = json.loads(card_path.read_text())
    card["weights_sha256"] = sha256_of(weights)
    card_path.write_text(json.dumps(seal_card(card)))
    with pytest.raises(ModelArtifactError, match="cannot be read"):
        load(str(artifact_dir))


@pytest.mark.parametrize("load", [load_classifier, load_model_info], ids=["network", "info"])
def test_label_count_mismatch(load, artifact_dir: Path) -> None:
    (artifact_dir / "labels.json").write_text(json.dumps({"apple_pie": "Apple pie"}))
    with pytest.raises(LabelMismatchError, match="1 dishes but the weights have 3 outputs"):
        load(str(artifact_dir))


@pytest.mark.parametrize("load", [load_classifier, load_model_info], ids=["network", "info"])
@pytest.mark.parametrize("missing", ["card.json", "labels.json", WEIGHTS_FILE])
def test_missing_file_is_named(load, artifact_dir: Path, missing: str) -> None:
    (artifact_dir / missing).unlink()
    with pytest.raises(ModelNotFoundError, match=missing):
        load(str(artifact_dir))


@pytest.mark.parametrize("load", [load_classifier, load_model_info], ids=["network", "info"])
def test_corrupt_card_is_named(load, artifact_dir: Path) -> None:
    (artifact_dir / "card.json").write_text("{not json")
    with pytest.raises(ModelArtifactError, match=r"card\.json is not valid JSON"):
        load(str(artifact_dir))


@pytest.mark.parametrize("load", [load_classifier, load_model_info], ids=["network", "info"])
def test_missing_directory(load, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="No model directory"):
        load(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("uri", [None, "artifact"])
def test_model_info_describes_the_model_the_classifier_loads(
    artifact_dir: Path, uri: str | None
) -> None:
    target = str(artifact_dir) if uri else None
    info, classifier = load_model_info(target), load_classifier(target)

    assert (info.name, info.labels, info.card) == (
        classifier.name,
        classifier.labels,
        classifier.card,
    )


def test_model_uri_setting_selects_the_model(artifact_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODEL_URI", str(artifact_dir))
    assert load_classifier().card["name"] == "test-model"


def test_bundled_models_can_be_named(monkeypatch, tmp_path: Path) -> None:
    settings = load_settings()
    assert resolve_model_dir(None, settings) == DEFAULT_MODEL_DIR
    assert resolve_model_dir("food10-lite0", settings) == BUNDLED_MODELS / "food10-lite0"
    assert (BUNDLED_MODELS / "food10-lite0" / "card.json").is_file()
    # A folder of the same name in the working directory wins over the bundled one.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "food10-lite0").mkdir()
    assert resolve_model_dir("food10-lite0", settings) == Path("food10-lite0")


# ---------------------------------------------------------------------------------------------
# CARD VALIDATION (every check without server paths in the message)


def edit_card(artifact_dir: Path, change, *, seal: bool = True) -> None:
    path = artifact_dir / "card.json"
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(seal_card(card) if seal else card))


@pytest.mark.parametrize("load", [load_classifier, load_model_info], ids=["network", "info"])
@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda c: c.pop("architecture"), "'architecture'"),
        (lambda c: c.pop("temperature"), "'temperature'"),
        (lambda c: c.update(input_size=100_000), "'input_size'"),
        (lambda c: c["preprocessing"].update(resize_size=100_000), "'resize_size'"),
        (lambda c: c.update(weights_file="/etc/passwd"), "'weights_file'"),
        (lambda c: c.update(weights_file="../other/model.safetensors"), "'weights_file'"),
        (lambda c: c.update(thresholds={"unsure_probability": "high"}), "'thresholds'"),
        (lambda c: c.update(food_gate={"input_size": 10**6, "food_classes": []}), "food_gate"),
    ],
)
def test_card_keys_and_bounds_are_checked(load, artifact_dir: Path, change, complaint) -> None:
    edit_card(artifact_dir, change)
    with pytest.raises(ModelArtifactError, match=complaint) as caught:
        load(str(artifact_dir))
    assert str(artifact_dir) not in str(caught.value)
    assert "card.json is not valid" in str(caught.value)


@pytest.mark.parametrize("load", [load_classifier, load_model_info], ids=["network", "info"])
def test_an_edited_card_fails_its_own_checksum(load, artifact_dir: Path) -> None:
    edit_card(artifact_dir, lambda c: c["thresholds"].update(unsure_probability=0.0), seal=False)
    with pytest.raises(ModelArtifactError, match="card_sha256 does not match"):
        load(str(artifact_dir))


def test_extra_card_keys_are_allowed(artifact_dir: Path) -> None:
    edit_card(artifact_dir, lambda c: c.update(calibration_v2={"anything": [1, 2]}))
    assert load_model_info(str(artifact_dir)).card["calibration_v2"] == {"anything": [1, 2]}


@pytest.mark.parametrize("labels", [["apple_pie", "baklava", "bibimbap"], {"a": 1, "b": 2, "c": 3}])
def test_labels_of_the_wrong_shape_are_named_as_such(artifact_dir: Path, labels) -> None:
    (artifact_dir / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(LabelMismatchError, match="must map each dish") as caught:
        load_model_info(str(artifact_dir))
    assert "outputs" not in str(caught.value)


@pytest.mark.parametrize("missing", ["card.json", WEIGHTS_FILE])
def test_messages_name_files_not_server_paths(artifact_dir: Path, missing: str) -> None:
    (artifact_dir / missing).unlink()
    with pytest.raises(ModelNotFoundError) as caught:
        load_model_info(str(artifact_dir))
    assert str(artifact_dir) not in str(caught.value)
    assert caught.value.path == str(artifact_dir / missing)  # the detail, for logs


def test_shipped_cards_are_sealed() -> None:
    for model in BUNDLED_MODELS.iterdir():
        card = json.loads((model / "card.json").read_text())
        check_card(card)
