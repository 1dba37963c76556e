"""The network that inference runs: every convolution one oneDNN call, in bfloat16 where the CPU
computes bfloat16 natively.

Each convolution of EfficientNet-Lite is followed by a BatchNorm and a ReLU6, and the last one
of a block by a residual add. :class:`FusedConv` folds the BatchNorm into the weights and the
padding into the convolution, and hands the ReLU6 or the add to oneDNN as a post-op of the same
kernel, so no feature map is written twice. On CPUs with AMX or AVX512-BF16 the weights and
maps are bfloat16 (about 1.7 times faster than float32; ``docs/benchmarks.md``); the pooled
features and everything after them stay float32. Without oneDNN (PyTorch builds without it)
the same modules run as plain ``conv2d`` calls.

oneDNN reorders each weight into its blocked layout on every call unless it is handed one
already packed. A packed weight suits one thread count and one input shape only: packed under
two threads and run under one, a forward pass took 10–20 times longer. So each convolution
packs lazily, once per (threads, input shape), and keeps the few most recently used (so that a
benchmark going through many batch sizes times each on packed weights).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from efficientnet_lite_pytorch import EfficientNet
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _onednn_works() -> bool:
    """Whether this PyTorch build runs oneDNN's fused convolutions (and packs their weights),
    tried once on a tiny input: builds for other CPUs may lack them or fail on them."""
    if not (
        torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    ):
        return False
    x, weight, bias = torch.ones(1, 2, 3, 3), torch.ones(2, 2, 1, 1), torch.zeros(2)
    try:
        packed = torch.ops.mkldnn._reorder_convolution_weight(
            weight, [0, 0], [1, 1], [1, 1], 1, [1, 2, 3, 3]
        )
        y = torch.ops.mkldnn._convolution_pointwise(
            x, packed, bias, [0, 0], [1, 1], [1, 1], 1, "hardtanh", [0.0, 1.5], ""
        )
        y = torch.ops.mkldnn._convolution_pointwise.binary(
            x, y, weight, bias, [0, 0], [1, 1], [1, 1], 1, "add", None, None, [], None
        )
    except RuntimeError:
        return False
    return bool(torch.all(y == 3.5))


ONEDNN = _onednn_works()
# Packed copies kept per convolution (thread counts × batch sizes), the most recently used.
MAX_PACKED = 4


# The number formats the network can run in, by the names INFERENCE_PRECISION takes.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 arithmetic (AMX or AVX512-BF16); emulated is slower."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def inference_dtype(precision: str = "auto") -> torch.dtype:
    """The dtype for ``precision`` (``auto`` or a key of :data:`DTYPES`; the caller passes
    ``INFERENCE_PRECISION``): ``auto`` picks bfloat16 only where it is native and fast."""
    if precision == "auto":
        return torch.bfloat16 if ONEDNN and native_bfloat16() else torch.float32
    if precision not in DTYPES:
        raise ValueError(f"precision {precision!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[precision]


class FusedConv(nn.Module):
    """Convolution + folded BatchNorm + ReLU6 (or + residual), one kernel.

    EfficientNet-Lite pads like TensorFlow: the stride-2 convolutions pad one pixel more at the
    end than at the start, which a convolution's own padding cannot express. Padding one
    stride more on both sides moves every output window by exactly one stride, so dropping the
    first output row and column (and any extra at the end) gives the one-sided result without
    a padded copy of the input.
    """

    weight: torch.Tensor
    bias: torch.Tensor

    def __init__(
        self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, *, relu6: bool, dtype: torch.dtype
    ) -> None:
        super().__init__()
        padding = one_sided_padding(conv)
        left, right, top, bottom = padding
        if not (0 <= right - left <= conv.stride[1] and 0 <= bottom - top <= conv.stride[0]):
            raise ValueError(f"padding {padding} is too one-sided for stride {conv.stride}")
        conv = fuse_conv_bn_eval(conv.eval(), bn.eval()) if bn is not None else conv
        weight = conv.weight.detach().to(dtype).contiguous(memory_format=torch.channels_last)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias.to(dtype))
        self.stride = list(conv.stride)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.kernel_size = conv.kernel_size
        self.relu6 = relu6
        self._packed: dict[tuple[int, ...], torch.Tensor] = {}
        self.one_sided = padding if (left, top) != (right, bottom) else None
        if self.one_sided:
            self.padding = [top + self.stride[0], left + self.stride[1]]
        else:
            self.padding = [top, left]

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        out = self._convolve(x, residual)
        if not self.one_sided:
            return out
        left, right, top, bottom = self.one_sided
        height = x.shape[2] + top + bottom - self.dilation[0] * (self.kernel_size[0] - 1) - 1
        width = x.shape[3] + left + right - self.dilation[1] * (self.kernel_size[1] - 1) - 1
        return out[:, :, 1 : 2 + height // self.stride[0], 1 : 2 + width // self.stride[1]]

    def packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        """The weight packed for ``x``'s shape and this thread's thread count (the least
        recently used of :data:`MAX_PACKED` packed copies makes way for a new one)."""
        key = (torch.get_num_threads(), *x.shape)
        packed = self._packed.pop(key, None)
        if packed is None:
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight, self.padding, self.stride, self.dilation, self.groups, list(x.shape)
            )
            # Each step is one dict operation, so threads sharing this module at worst pack
            # a weight twice.
            while len(self._packed) >= MAX_PACKED:
                self._packed.pop(next(iter(self._packed), ()), None)
        self._packed[key] = packed  # last: the most recently used
        return packed

    def _convolve(self, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        shape = (self.padding, self.stride, self.dilation, self.groups)
        if ONEDNN and residual is not None:
            out = torch.ops.mkldnn._convolution_pointwise.binary(
                x, residual, self.packed_weight(x), self.bias, *shape, "add", None, None, [], None
            )
            # oneDNN takes no activation after the add (EfficientNet-Lite has none there).
            return out.clamp_(0.0, 6.0) if self.relu6 else out
        if ONEDNN:
            activation, scalars = ("hardtanh", [0.0, 6.0]) if self.relu6 else ("none", [])
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.packed_weight(x), self.bias, *shape, activation, scalars, ""
            )
        out = F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )
        if residual is not None:
            out += residual
        return out.clamp_(0.0, 6.0) if self.relu6 else out


def one_sided_padding(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` padding of an EfficientNet convolution."""
    static = getattr(conv, "static_padding", None)
    if isinstance(static, nn.ZeroPad2d):
        if any(conv.padding):
            raise ValueError("a convolution with both static and own padding")
        left, right, top, bottom = static.padding
        return (left, right, top, bottom)
    if isinstance(conv.padding, str):
        raise ValueError(f"padding {conv.padding!r} is not a number of pixels")
    top, left = conv.padding
    return (left, left, top, top)


class FusedBlock(nn.Module):
    """An MBConv block: 1×1 expansion, depthwise convolution, 1×1 projection (+ skip)."""

    def __init__(self, block: Any, dtype: torch.dtype) -> None:
        # ``block`` is an efficientnet_lite_pytorch MBConvBlock (an untyped library).
        super().__init__()
        if block.has_se:
            raise ValueError("squeeze-and-excitation blocks are not EfficientNet-Lite's")
        args = block._block_args
        self.expand = (
            FusedConv(block._expand_conv, block._bn0, relu6=True, dtype=dtype)
            if args.expand_ratio != 1
            else None
        )
        self.depthwise = FusedConv(block._depthwise_conv, block._bn1, relu6=True, dtype=dtype)
        self.project = FusedConv(block._project_conv, block._bn2, relu6=False, dtype=dtype)
        self.skip = bool(
            block.id_skip and args.stride == 1 and args.input_filters == args.output_filters
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.expand(x) if self.expand is not None else x
        return self.project(self.depthwise(hidden), residual=x if self.skip else None)


class InferenceTrunk(nn.Module):
    """An EfficientNet-Lite, fused for inference; ``forward`` gives its classifier's logits
    (or the pooled features where the classifier is ``nn.Identity``), in float32."""

    def __init__(self, backbone: EfficientNet, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        backbone.eval()
        self.dtype = dtype
        self.stem = FusedConv(backbone._conv_stem, backbone._bn0, relu6=True, dtype=dtype)
        self.blocks = nn.ModuleList(FusedBlock(block, dtype) for block in backbone._blocks)
        self.head = FusedConv(backbone._conv_head, backbone._bn1, relu6=True, dtype=dtype)
        self.fc = backbone._fc

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """The last feature map (float32) of a normalised float32 image batch."""
        x = self.stem(images.to(self.dtype).contiguous(memory_format=torch.channels_last))
        for block in self.blocks:
            x = block(x)
        return self.head(x).float()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.extract_features(images).mean(dim=(2, 3)))
