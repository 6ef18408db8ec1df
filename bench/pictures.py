"""Webcam-size pictures composed from face crops, for benchmarks: backgrounds and pasting (with a cut-out's mask)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image

BACKGROUNDS = ("plain", "gradient", "noise", "photo")


@lru_cache(maxsize=1)
def sample_photos() -> tuple[Image.Image, ...]:
    """scikit-learn's two sample photos (a temple, a flower): real scenes with no face."""
    from sklearn.datasets import load_sample_images

    return tuple(Image.fromarray(a) for a in load_sample_images().images)


def background(kind: str, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A plain colour, a grey ramp, noise, or a sample photo."""
    if kind == "plain":
        return Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(40, 230, 3)))
    if kind == "gradient":
        ramp = np.linspace(rng.integers(0, 120), rng.integers(130, 255), width, dtype=np.float32)
        return Image.fromarray(np.repeat(np.tile(ramp, (height, 1))[:, :, None], 3, 2).astype(np.uint8))
    if kind == "noise":
        return Image.fromarray(rng.integers(60, 200, (height, width, 3), dtype=np.uint8))
    photos = sample_photos()
    return photos[int(rng.integers(len(photos)))].resize((width, height))


def cut_out_alpha(face: Image.Image) -> Image.Image | None:
    """The face of a cut-out (a face set on black) as an "L" alpha mask; None for an ordinary crop."""
    from fusion.augment import surround_mask

    surround = surround_mask(torch.from_numpy(np.array(face.convert("RGB"))).permute(2, 0, 1))
    if not surround.any():
        return None
    return Image.fromarray(((~surround) * 255).astype(np.uint8), "L")


def paste_face(canvas: Image.Image, face: Image.Image, side: int, x: int, y: int) -> None:
    """`face` resized to `side` at (x, y); a cut-out is pasted without its black surround."""
    alpha = cut_out_alpha(face)
    resized = face.convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
    mask = alpha.resize((side, side), Image.Resampling.BILINEAR) if alpha is not None else None
    canvas.paste(resized, (x, y), mask)


def face_in_picture(face: Image.Image, rng: np.random.Generator, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """One face of 100 to 220 px at a random place in a webcam-size picture with a random background."""
    width, height = size
    canvas = background(BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))], width, height, rng)
    side = int(rng.integers(100, 221))
    paste_face(canvas, face, side, int(rng.integers(0, width - side)), int(rng.integers(0, height - side)))
    return canvas
