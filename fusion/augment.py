"""Training-time image augmentation (`fusion.preprocess.image_transform` builds it with `is_train`).

Two concerns: what a camera and a face detector do to a face (`AUGMENTS`), and what surrounds the face
(`SURROUNDS`). Some face sets are cut out along the face outline and set on black (effectnet); a camera
never shows that, and a model trained on such a set beside others can learn "black surround = that set's
label mix". "inner" crops those faces to their inner part; "random" fills the surround with random
content (flat, gradient, smooth or fine noise, or left black) and gives other faces the same kind of cut-out
now and then, so the surround says nothing about where a face came from.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torchvision.transforms import v2

AUGMENTS = ("basic", "webcam")
SURROUNDS = ("keep", "inner", "random")
DARK = 8  # uint8: a cut-out surround is black up to JPEG noise
SURROUND_MIN_SHARE = 0.15  # dark area touching the border, as a share of the image, that counts as a cut-out


class RandomGamma(torch.nn.Module):
    """A random gamma (camera exposure curves) on uint8 image tensors."""

    def __init__(self, low: float = 0.6, high: float = 1.6):
        super().__init__()
        self.low, self.high = low, high

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        gamma = float(torch.empty(()).uniform_(self.low, self.high))
        return ((image.float() / 255) ** gamma * 255).round().to(torch.uint8)


def surround_mask(image: torch.Tensor) -> np.ndarray:
    """(H, W) bool: the dark region connected to the image border (a cut-out's surround); all False when it is
    too small to be one (a dark corner of an ordinary photo)."""
    dark = (image.amax(0) < DARK).numpy().astype(np.uint8)
    count, labels = cv2.connectedComponents(dark, connectivity=4)
    if count < 2:
        return np.zeros(dark.shape, dtype=bool)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    mask = np.isin(labels, border[border > 0])
    return mask if mask.mean() >= SURROUND_MIN_SHARE else np.zeros(dark.shape, dtype=bool)


def oval_mask(height: int, width: int, generator: torch.Generator | None = None) -> np.ndarray:
    """(H, W) bool: outside a random face-like ellipse (a cut-out as effectnet's faces are)."""
    u = torch.rand(5, generator=generator).tolist()
    cy, cx = height * (0.5 + 0.06 * (u[0] - 0.5)), width * (0.5 + 0.06 * (u[1] - 0.5))
    ry, rx = height * (0.46 + 0.08 * u[2]), width * (0.36 + 0.1 * u[3])
    angle = math.radians(10 * (u[4] - 0.5))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    dy, dx = y - cy, x - cx
    a, b = dx * math.cos(angle) + dy * math.sin(angle), -dx * math.sin(angle) + dy * math.cos(angle)
    return (a / rx) ** 2 + (b / ry) ** 2 > 1.0


def random_fill(shape: tuple[int, int, int], generator: torch.Generator | None = None) -> torch.Tensor:
    """A uint8 (C, H, W) background: black, one flat level, a gradient, smooth blobs, or fine noise."""
    channels, height, width = shape
    kind = int(torch.randint(5, (1,), generator=generator))
    if kind == 0:
        return torch.zeros(shape, dtype=torch.uint8)
    if kind == 1:
        cells = 1
    elif kind == 2:
        cells = 2
    else:
        cells = int(torch.randint(3, 7, (1,), generator=generator)) if kind == 3 else max(height, width) // 4
    grid = torch.rand(cells, cells, channels, generator=generator).numpy()
    smooth = cv2.INTER_LINEAR if cells == 2 else cv2.INTER_CUBIC
    fill = cv2.resize(grid, (width, height), interpolation=smooth).reshape(height, width, channels)
    return torch.from_numpy((np.clip(fill, 0, 1) * 255).round().astype(np.uint8)).permute(2, 0, 1)


class RandomSurround(torch.nn.Module):
    """On a uint8 (C, H, W) face: a cut-out's black surround filled with `random_fill` (black stays black one
    time in five); a face that is no cut-out becomes one with probability `cut_out` (a random oval), then filled
    the same way. The edge is softened by a pixel, as a cut-out's is."""

    def __init__(self, cut_out: float = 0.15):
        super().__init__()
        self.cut_out = cut_out

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        mask = surround_mask(image)
        if not mask.any():
            if float(torch.rand(())) >= self.cut_out:
                return image
            mask = oval_mask(*image.shape[-2:])
        alpha = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0.8)[None]
        fill = random_fill(tuple(image.shape)).numpy()
        mixed = image.numpy() * (1 - alpha) + fill * alpha
        return torch.from_numpy(mixed.round().astype(np.uint8))


class InnerFace(torch.nn.Module):
    """On a uint8 (C, H, W) cut-out face (see `surround_mask`): its centred inner `share`; other faces as they are."""

    def __init__(self, share: float = 0.8):
        super().__init__()
        self.share = share

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if not surround_mask(image).any():
            return image
        return v2.functional.center_crop(image, [round(self.share * s) for s in image.shape[-2:]])


def surround_augmentation(surround: str) -> list:
    if surround not in SURROUNDS:
        raise ValueError(f"Unknown surround handling {surround!r}; use one of {SURROUNDS}.")
    return {"keep": [], "inner": [InnerFace()], "random": [RandomSurround()]}[surround]


def train_augmentation(size: int, channels: int, augment: str, surround: str = "keep") -> list:
    """What training does to a uint8 face crop tensor: the surround (`surround_augmentation`), then "basic":
    crops, flips, small turns, brightness/contrast, or "webcam": what a camera and a face detector do to a face:
    the crop box jittered and rescaled as a detector places it, turns, blur and low resolution, JPEG, exposure
    (brightness, contrast, gamma)."""
    if augment not in AUGMENTS:
        raise ValueError(f"Unknown augmentation {augment!r}; use one of {AUGMENTS}.")
    first = surround_augmentation(surround)
    if augment == "basic":
        return [
            *first,
            v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomRotation(10),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.2 if channels == 3 else 0),
        ]
    low = max(8, size // 2)
    return [
        *first,
        v2.RandomAffine(degrees=15, translate=(0.06, 0.06), scale=(0.9, 1.12), fill=128),
        v2.RandomResizedCrop(size, scale=(0.75, 1.0), ratio=(0.85, 1.15), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.GaussianBlur(5, sigma=(0.3, 1.4))], p=0.25),
        v2.RandomApply([v2.Resize(low, antialias=True), v2.Resize(size, antialias=True)], p=0.2),
        v2.RandomApply([v2.JPEG((30, 90))], p=0.3),
        v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2 if channels == 3 else 0),
        v2.RandomApply([RandomGamma()], p=0.3),
    ]
