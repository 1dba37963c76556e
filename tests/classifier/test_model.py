"""The inference-only rewrites of the network give the network's own outputs."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from classifier.model import (
    PointwiseConv2d,
    ShiftedPaddingConv2d,
    fuse_backbone,
    load_backbone,
)


@pytest.fixture(scope="module")
def backbone() -> nn.Module:
    return load_backbone("efficientnet-lite0").eval()


@pytest.mark.parametrize(
    ("size", "memory_format"),
    [
        (112, torch.channels_last),
        (160, torch.channels_last),
        (256, torch.channels_last),
        (97, torch.channels_last),
        (112, torch.contiguous_format),
    ],
)
def test_fused_backbone_gives_the_same_features(backbone, size, memory_format) -> None:
    fused = fuse_backbone(copy.deepcopy(backbone)).to(memory_format=memory_format)
    torch.manual_seed(size)
    images = torch.randn(3, 3, size, size)
    with torch.inference_mode():
        expected = backbone.extract_features(images)
        got = fused.extract_features(images.contiguous(memory_format=memory_format))
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_fused_backbone_pads_no_copies_and_activates_in_place(backbone: nn.Module) -> None:
    fused = fuse_backbone(copy.deepcopy(backbone))
    modules = list(fused.modules())
    assert not any(isinstance(m, nn.ZeroPad2d | nn.BatchNorm2d) for m in modules)
    assert sum(isinstance(m, ShiftedPaddingConv2d) for m in modules) == 5  # the stride-2 convs
    # Each block's expand (all but the first) and project convolutions, and the head's.
    assert sum(isinstance(m, PointwiseConv2d) for m in modules) == 15 + 16 + 1
    assert not any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in modules)
    assert all(m.inplace for m in modules if isinstance(m, nn.ReLU6))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [(3, 2, (0, 1, 0, 1)), (5, 2, (1, 2, 1, 2)), (3, 2, (1, 1, 0, 1)), (5, 3, (1, 3, 0, 2))],
)
@pytest.mark.parametrize("size", [8, 9, 14])
def test_shifted_padding_equals_padding_first(kernel, stride, padding, size) -> None:
    torch.manual_seed(size)
    conv = nn.Conv2d(4, 6, kernel, stride=stride)
    x = torch.randn(2, 4, size, size + 1)
    with torch.no_grad():
        expected = conv(F.pad(x, padding))
        got = ShiftedPaddingConv2d(conv, padding)(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)


def test_padding_more_one_sided_than_the_stride_is_refused() -> None:
    with pytest.raises(ValueError, match="too one-sided"):
        ShiftedPaddingConv2d(nn.Conv2d(1, 1, 5, stride=2), (0, 3, 0, 3))
