"""The fused inference network gives the network's own outputs, in both number formats."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from classifier import trunk
from classifier.model import load_backbone
from classifier.nonfood import nonfood_images
from classifier.presets import EvalPreset
from classifier.trunk import FusedConv, InferenceTrunk, inference_dtype, native_bfloat16
from dishlens.settings import PRECISIONS


@pytest.fixture(scope="module")
def backbone() -> nn.Module:
    return load_backbone("efficientnet-lite0").eval()


@pytest.fixture(params=[True, False], ids=["onednn", "plain-conv2d"])
def onednn(request, monkeypatch) -> bool:
    if request.param and not trunk.ONEDNN:
        pytest.skip("this PyTorch build has no oneDNN")
    monkeypatch.setattr(trunk, "ONEDNN", request.param)
    return request.param


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
def test_float32_trunk_gives_the_same_features(backbone, onednn, size, memory_format) -> None:
    fused = InferenceTrunk(copy.deepcopy(backbone))
    torch.manual_seed(size)
    images = torch.randn(3, 3, size, size)
    with torch.inference_mode():
        expected = backbone.extract_features(images)
        got = fused.extract_features(images.contiguous(memory_format=memory_format))
        logits = fused(images)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits, backbone(images), atol=1e-4, rtol=1e-4)


def test_bfloat16_trunk_sees_what_float32_sees_in_real_photos(backbone) -> None:
    """bfloat16 keeps 8 bits of mantissa: the probabilities move a little, and a near tie may
    swap, but an answer that float32 gives with a clear lead stays."""
    preset = EvalPreset(crop_size=224, resize_size=224)
    photos = [item.image for item in nonfood_images() if item.family == "photo"]
    images = torch.stack([preset(image) for image in photos])
    with torch.inference_mode():
        full = F.softmax(InferenceTrunk(copy.deepcopy(backbone), torch.float32)(images), 1)
        half = F.softmax(InferenceTrunk(copy.deepcopy(backbone), torch.bfloat16)(images), 1)
    assert half.dtype == torch.float32
    assert not torch.equal(half, full)  # it did run in bfloat16
    assert (half - full).abs().sum(1).max() < 0.3
    top_two = full.topk(2, dim=1).values
    clear = top_two[:, 0] >= 2 * top_two[:, 1]
    assert clear.sum() >= 5
    assert torch.equal(half.argmax(1)[clear], full.argmax(1)[clear])


@pytest.mark.skipif(not trunk.ONEDNN, reason="this PyTorch build has no oneDNN")
def test_weights_are_packed_per_thread_count_and_shape(backbone, monkeypatch) -> None:
    fused = InferenceTrunk(copy.deepcopy(backbone), torch.bfloat16)
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    images = torch.randn(7, 3, 64, 64)
    try:
        with torch.inference_mode():
            outputs = {}
            for count, batch in [(1, 1), (2, 1), (1, 3), (1, 4), (1, 1), (1, 6)]:
                torch.set_num_threads(count)
                outputs[count, batch] = fused(images[:batch])
            monkeypatch.setattr(FusedConv, "packed_weight", lambda conv, x: conv.weight)
            plain = {key: fused(images[: key[1]]) for key in outputs}
    finally:
        torch.set_num_threads(threads)
    # Batch 6 made way for itself by dropping the least recently used (2 threads, batch 1).
    assert list(fused.stem._packed) == [
        (1, 3, 3, 64, 64),
        (1, 4, 3, 64, 64),
        (1, 1, 3, 64, 64),
        (1, 6, 3, 64, 64),
    ]
    assert all(w.is_mkldnn for w in fused.stem._packed.values())
    assert not fused.stem.weight.is_mkldnn
    for key, output in outputs.items():
        assert torch.equal(output, plain[key]), key


@pytest.mark.skipif(not trunk.ONEDNN, reason="this PyTorch build has no oneDNN")
def test_packed_weights_are_bounded_and_the_latest_kept(backbone) -> None:
    fused = InferenceTrunk(copy.deepcopy(backbone), torch.bfloat16)
    threads = torch.get_num_threads()
    images = torch.randn(8, 3, 32, 32)
    keys = [(count, size) for count in (1, 2) for size in (1, 2, 3)]
    try:
        with torch.inference_mode():
            for count, size in keys:
                torch.set_num_threads(count)
                fused(images[:size])
    finally:
        torch.set_num_threads(threads)
    packed = [(key[0], key[1]) for key in fused.stem._packed]
    assert len(keys) > trunk.MAX_PACKED
    assert packed == keys[-trunk.MAX_PACKED :]


def test_trunk_fuses_every_convolution(backbone: nn.Module) -> None:
    fused = InferenceTrunk(copy.deepcopy(backbone))
    convs = [m for m in fused.modules() if isinstance(m, FusedConv)]
    # stem, 15 expansions (not the first block's), 16 depthwise, 16 projections, head
    assert len(convs) == 1 + 15 + 16 + 16 + 1
    assert sum(c.one_sided is not None for c in convs) == 5  # the stride-2 convolutions
    assert sum(c.relu6 for c in convs) == len(convs) - 16  # all but the projections
    assert sum(block.skip for block in fused.blocks) == 9
    assert not any(isinstance(m, nn.BatchNorm2d | nn.ZeroPad2d | nn.ReLU6) for m in fused.modules())


def conv_with_static_padding(kernel: int, stride: int, padding: tuple[int, ...]) -> nn.Conv2d:
    conv = nn.Conv2d(4, 6, kernel, stride=stride)
    conv.static_padding = nn.ZeroPad2d(padding)
    return conv


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [(3, 2, (0, 1, 0, 1)), (5, 2, (1, 2, 1, 2)), (3, 2, (1, 1, 0, 1)), (5, 3, (1, 3, 0, 2))],
)
@pytest.mark.parametrize("size", [8, 9, 14])
def test_one_sided_padding_equals_padding_first(onednn, kernel, stride, padding, size) -> None:
    torch.manual_seed(size)
    conv = conv_with_static_padding(kernel, stride, padding)
    x = torch.randn(2, 4, size, size + 1)
    with torch.no_grad():
        expected = F.relu6(conv(F.pad(x, padding)))
        got = FusedConv(conv, None, relu6=True, dtype=torch.float32)(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("relu6", [False, True])
def test_residual_is_added_after_batchnorm_and_before_relu6(onednn, relu6) -> None:
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(6, 6, 1), nn.BatchNorm2d(6).eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    x, skip = torch.randn(2, 6, 7, 7), 4 * torch.randn(2, 6, 7, 7)
    with torch.no_grad():
        expected = bn(conv(x)) + skip
        expected = F.relu6(expected) if relu6 else expected
        got = FusedConv(conv, bn, relu6=relu6, dtype=torch.float32)(x, residual=skip)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_padding_more_one_sided_than_the_stride_is_refused() -> None:
    with pytest.raises(ValueError, match="too one-sided"):
        FusedConv(
            conv_with_static_padding(5, 2, (0, 3, 0, 3)), None, relu6=True, dtype=torch.float32
        )


def test_precision_names_pick_a_dtype() -> None:
    assert inference_dtype("float32") == torch.float32
    assert inference_dtype("bfloat16") == torch.bfloat16
    expected = torch.bfloat16 if trunk.ONEDNN and native_bfloat16() else torch.float32
    assert inference_dtype("auto") == expected
    with pytest.raises(ValueError, match="half"):
        inference_dtype("half")


def test_every_precision_the_settings_accept_picks_a_dtype() -> None:
    # The trunk takes the setting's value without importing the settings; the two lists agree.
    assert ("auto", *trunk.DTYPES) == PRECISIONS
    for name in PRECISIONS:
        assert inference_dtype(name) in (torch.float32, torch.bfloat16)


PRIVATE_OPS = ("_convolution_pointwise", "_reorder_convolution_weight")


def test_the_private_onednn_ops_the_trunk_runs_on_still_work() -> None:
    """Fails loudly when a PyTorch upgrade removes or changes the private oneDNN ops: the trunk
    would then fall back to plain ``conv2d`` silently, and run slower."""
    if not torch.backends.mkldnn.is_available():
        pytest.skip(f"this PyTorch build ({torch.__version__}) has no oneDNN: plain conv2d path")
    missing = [name for name in PRIVATE_OPS if not hasattr(torch.ops.mkldnn, name)]
    advice = (
        "classifier/trunk.py now runs on plain conv2d. Measure the replacement with "
        "`python3 -m benchmarks.bench_trunk_compile` (docs/benchmarks.md): torch.compile with "
        "Inductor's freezing does the same folding and packing."
    )
    assert not missing, (
        f"PyTorch {torch.__version__} has no torch.ops.mkldnn.{', '.join(missing)}. {advice}"
    )
    assert trunk.ONEDNN, (
        f"PyTorch {torch.__version__}'s torch.ops.mkldnn._convolution_pointwise no longer gives "
        f"the fused result on a tiny input (changed signature or semantics). {advice}"
    )
