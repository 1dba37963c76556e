"""Frozen modules stay in eval mode when the model around them trains."""

from __future__ import annotations

from torch import nn

from classifier.model import keep_in_eval_mode


def test_a_module_kept_in_eval_mode_ignores_train() -> None:
    model = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 3, 1))
    keep_in_eval_mode(model[0])

    model.train()

    assert (model[0].training, model[1].training) == (False, True)
    model.eval()
    model.train(True)
    assert (model[0].training, model[1].training) == (False, True)
