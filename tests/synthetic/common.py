"""Helpers shared by the generator: random picks, colour arithmetic and face-relative coordinates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

RGB = tuple[int, int, int]
T = TypeVar("T")


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    """One of `items`, uniformly."""
    return items[int(rng.integers(len(items)))]


def clamp(x: float, low: float, high: float) -> float:
    return min(max(float(x), low), high)


def scale(colour: tuple[float, ...], k: float | tuple[float, ...]) -> RGB:
    """`colour` times `k`, per channel when `k` is a tuple."""
    ks = k if isinstance(k, tuple) else (k, k, k)
    return tuple(int(clamp(c * m, 0, 255)) for c, m in zip(colour, ks))


def mix(a: tuple[float, ...], b: tuple[float, ...], t: float) -> RGB:
    """Opaque a..b blend (the face layer is RGBA: translucent paint would let the background through)."""
    return tuple(int(clamp(x + t * (y - x), 0, 255)) for x, y in zip(a, b))


def random_colour(rng: np.random.Generator) -> RGB:
    return tuple(int(v) for v in rng.integers(25, 235, 3))


@dataclass
class Geo:
    """Face-relative coordinates: u across (units of rx), v down (units of ry), from the face centre."""

    cx: float
    cy: float
    rx: float
    ry: float

    def pt(self, u: float, v: float) -> tuple[float, float]:
        return (self.cx + u * self.rx, self.cy + v * self.ry)

    def box(self, u: float, v: float, hu: float, hv: float) -> tuple[float, float, float, float]:
        x, y = self.pt(u, v)
        return (x - hu * self.rx, y - hv * self.ry, x + hu * self.rx, y + hv * self.ry)

    def w(self, k: float) -> int:
        return max(1, round(k * self.ry))

    def line(self, us: np.ndarray, vs: np.ndarray) -> list[tuple[float, float]]:
        return [self.pt(float(u), float(v)) for u, v in zip(us, vs)]
