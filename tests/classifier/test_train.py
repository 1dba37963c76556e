"""``train --init-from`` reads a training checkpoint or a model directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from classifier.artifact import load_artifact
from classifier.train import initial_weights


def test_init_from_a_model_directory_or_a_checkpoint(artifact_dir: Path, tmp_path) -> None:
    expected = load_artifact(artifact_dir)[0].state_dict()
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model": expected, "epoch": 3}, checkpoint)

    for source in (artifact_dir, checkpoint):
        weights = initial_weights(source)
        assert weights.keys() == expected.keys()
        assert all(weights[k].equal(expected[k]) for k in expected)


class _RunsCode:
    """Unpickling this calls ``marker.touch()``: what a hostile checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_that_carries_code_is_refused_without_running_it(tmp_path) -> None:
    marker = tmp_path / "code-ran"
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "payload": _RunsCode(marker)}, checkpoint)

    with pytest.raises(SystemExit, match="not a checkpoint this script wrote"):
        initial_weights(checkpoint)
    assert not marker.exists()
