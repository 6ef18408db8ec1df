"""A ResNet for small gray face crops (48 px FER2013-style faces), sized for a CPU.

torchvision's ImageNet ResNets start with a 7x7 stride-2 conv and a max pool: a 48 px face would be
12 px wide after the stem. This one keeps the residual stages of ResNet-18 (BasicBlock, [2, 2, 2, 2])
but starts with a 3x3 conv at `stem_stride` and no pooling, so the first stage sees the face at
48 px (stride 1) or 24 px (stride 2). `width` scales the channels (64 = ResNet-18's own).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock


class FaceResNet(nn.Module):
    """(B, channels, H, W) -> pooled features (B, 8 * width)."""

    def __init__(
        self, width: int = 32, layers: Sequence[int] = (2, 2, 2, 2), stem_stride: int = 1, in_channels: int = 1
    ):
        super().__init__()
        widths = [width * 2**i for i in range(len(layers))]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages, channels = [], width
        for i, (planes, blocks) in enumerate(zip(widths, layers, strict=True)):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or channels != planes:
                down = nn.Sequential(nn.Conv2d(channels, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
            stage = [BasicBlock(channels, planes, stride, down)]
            stage += [BasicBlock(planes, planes) for _ in range(1, blocks)]
            stages.append(nn.Sequential(*stage))
            channels = planes
        self.stages = nn.Sequential(*stages)
        self.dim = channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for module in self.modules():  # each residual branch starts as the identity (torchvision's zero_init_residual)
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))
