"""Averaging a model's weights with other runs of it (``calibrate --average-with``)."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import pytest
import torch

from classifier.artifact import load_artifact, save_artifact
from classifier.calibrate import average_weights
from classifier.errors import ModelArtifactError


def perturbed_copy(source: Path, out: Path, **card_changes: object) -> Path:
    """``source`` with its head weights shifted by +1 (and ``card_changes`` applied)."""
    model, scorer, labels, card = load_artifact(source)
    with torch.no_grad():
        model.head.weight += 1.0
    save_artifact(out, model, scorer, labels, {**card, "version": "1", **card_changes})
    return out


def test_weights_become_the_mean_and_the_card_names_both(artifact_dir: Path, tmp_path) -> None:
    other = perturbed_copy(artifact_dir, tmp_path / "other")
    model, _, labels, card = load_artifact(artifact_dir)
    before = model.head.weight.detach().clone()

    averaged_card = average_weights(model, labels, card, [other])

    assert torch.allclose(model.head.weight, before + 0.5, atol=1e-3)
    assert model.backbone._conv_stem.weight.equal(
        load_artifact(other)[0].backbone._conv_stem.weight
    )
    names = averaged_card["training"]["averaged_weights_of"]
    assert [n.split(" ")[0] for n in names] == ["test-model@0", "test-model@1"]
    assert averaged_card["version"] == datetime.date.today().isoformat()  # a new model


def test_a_model_with_other_labels_is_refused(artifact_dir: Path, tmp_path) -> None:
    other = Path(shutil.copytree(artifact_dir, tmp_path / "other"))
    labels = json.loads((other / "labels.json").read_text())
    renamed = {("waffles" if k == "baklava" else k): v for k, v in labels.items()}
    (other / "labels.json").write_text(json.dumps(renamed))
    model, _, labels, card = load_artifact(artifact_dir)

    with pytest.raises(ModelArtifactError, match="they differ in labels") as caught:
        average_weights(model, labels, card, [other])
    assert caught.value.path.endswith("card.json")


def test_a_model_with_another_input_pipeline_is_refused(artifact_dir: Path, tmp_path) -> None:
    _, _, _, card = load_artifact(artifact_dir)
    preprocessing = {**card["preprocessing"], "shrink_size": 64}
    other = perturbed_copy(artifact_dir, tmp_path / "other", preprocessing=preprocessing)
    model, _, labels, card = load_artifact(artifact_dir)

    with pytest.raises(ModelArtifactError, match="they differ in input pipeline"):
        average_weights(model, labels, card, [other])


def test_display_names_may_differ(artifact_dir: Path, tmp_path) -> None:
    # A training run writes plain names; a shipped model may carry the dish cards' names.
    other = Path(shutil.copytree(artifact_dir, tmp_path / "other"))
    labels = json.loads((other / "labels.json").read_text())
    (other / "labels.json").write_text(json.dumps({k: v.upper() for k, v in labels.items()}))
    model, _, labels, card = load_artifact(artifact_dir)

    averaged_card = average_weights(model, labels, card, [other])

    assert len(averaged_card["training"]["averaged_weights_of"]) == 2
