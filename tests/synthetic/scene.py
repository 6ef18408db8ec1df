"""What surrounds the drawn face: backgrounds, directional lighting, a colour cast and sensor noise."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image

from tests.synthetic.common import pick, random_colour


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) in [-0.5, 0.5), float32."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - np.float32(0.5)
    return yy, xx


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Plain colour, linear or radial gradient, stripes, checks, soft blobs or a wall with a floor."""
    kind = pick(rng, ("plain", "linear", "radial", "stripes", "checks", "blobs", "wall"))
    c1, c2 = np.array(random_colour(rng), float), np.array(random_colour(rng), float)
    yy, xx = _grid(size)
    yy, xx = yy + 0.5, xx + 0.5
    angle = rng.uniform(0, 2 * math.pi)
    along = xx * math.cos(angle) + yy * math.sin(angle)
    if kind == "plain":
        mix = np.zeros_like(xx)
    elif kind == "linear":
        mix = (along - along.min()) / (np.ptp(along) + 1e-9)
    elif kind == "radial":
        mix = np.clip(np.hypot(xx - 0.5, yy - 0.5) / 0.7, 0, 1)
    elif kind == "stripes":
        c2 = c1 * rng.uniform(0.6, 0.9)
        mix = 0.5 + 0.5 * np.tanh(3 * np.sin(along * rng.uniform(12, 40)))
    elif kind == "checks":
        c2 = c1 * rng.uniform(0.6, 0.9)
        n = rng.uniform(4, 10)
        mix = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(float)
    elif kind == "blobs":
        grid = Image.fromarray(rng.integers(20, 235, (int(rng.integers(3, 7)),) * 2 + (3,), dtype=np.uint8))
        return np.asarray(grid.resize((size, size), Image.BICUBIC), dtype=float)
    else:  # wall
        mix = (yy > rng.uniform(0.55, 0.85)).astype(float)
    return c1 * (1 - mix[..., None]) + c2 * mix[..., None]


def light_and_noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Directional lighting, brightness, a colour cast and sensor noise."""
    size = image.size[0]
    yy, xx = _grid(size)
    angle = rng.uniform(0, 2 * math.pi)
    light = rng.uniform(0.75, 1.15) + rng.uniform(0, 0.5) * (xx * math.cos(angle) + yy * math.sin(angle))
    cast = (1 + rng.uniform(-0.06, 0.06, 3)).astype(np.float32)
    pixels = np.asarray(image, dtype=np.float32) * light[..., None] * cast
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(rng.uniform(0, 9))
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))
