"""A deterministic, offline generator of paired (drawn face, sentence, label) emotion data.

    python -m train.synthetic --out data/synth [--n 700] [--seed 0] [--image-size 160] \
        [--ambiguous-face 0.25] [--ambiguous-text 0.25] [--format csv|disk] [--workers N]

Faces are drawn with PIL: mouth, brows, eyes, nose wrinkles and cheeks follow the label with a random
intensity, over varied skin tones, hair, head pose, backgrounds, lighting and noise. Sentences come
from per-emotion templates and vocabularies. A share of rows has an unclear face (near-zero expression,
sometimes occluded or blurred) with a clear sentence, another share an uninformative sentence with a
clear face, never both, so each modality alone tops out below 100% while the pair determines the
label. Every sample is drawn from its own generator seeded by (seed, index): the same arguments give
byte-identical files whatever the generation order.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm.auto import tqdm

from fusion.labels import EMOTIONS

RGB = tuple[int, int, int]
SUPERSAMPLE = 2  # faces are drawn at 2x and downsampled, for smooth edges
CLEAR_INTENSITY = (0.6, 1.0)
UNCLEAR_INTENSITY = (0.0, 0.08)
FACE_HEIGHT = (0.30, 0.36)  # half the face height, as a share of the image side
FACE_SHIFT = 0.025  # largest offset of the face centre from the image centre, as a share of the side
MAX_TILT = 5.0  # degrees
OCCLUSIONS = ("blur", "mask", "hand", "shades", "pixelate")
FORMATS = ("csv", "disk")

# ---------------------------------------------------------------------------------------------
# Expressions


@dataclass
class Expression:
    """Facial action parameters; all zero is a relaxed, neutral face."""

    mouth_curve: float = 0.0  # + corners up (smile), - corners down
    mouth_open: float = 0.0  # 0 closed .. 1 wide open
    mouth_width: float = 0.0  # + stretched, - narrow
    mouth_round: float = 0.0  # 1 = round "O" opening
    lip_press: float = 0.0  # 1 = thin, pressed lips
    sneer: float = 0.0  # one side of the upper lip raised
    teeth: float = 0.0  # teeth showing in an open mouth
    brow_raise: float = 0.0  # + up, - down
    brow_inner: float = 0.0  # + inner ends up (worry), - inner ends down (a V)
    brow_arch: float = 0.0
    brow_squeeze: float = 0.0  # brows pulled together
    eye_open: float = 0.0  # + wide, - squint
    nose_wrinkle: float = 0.0
    cheek_raise: float = 0.0
    tear: float = 0.0
    sweat: float = 0.0


# Per-person quirks: a neutral face is never perfectly symmetric or straight.
_QUIRKS = {"mouth_curve": 0.1, "mouth_width": 0.12, "brow_raise": 0.12, "brow_inner": 0.1, "brow_arch": 0.15}
_QUIRKS |= {"eye_open": 0.1}
_NON_NEGATIVE = ("mouth_open", "mouth_round", "lip_press", "sneer", "teeth", "nose_wrinkle", "cheek_raise")


def _prototype(label: str, variant: np.ndarray) -> dict[str, float]:
    """The full-intensity expression of `label`; `variant` (2 uniforms) picks open or closed smile, etc."""
    if label == "happy":
        opened = variant[0] < 0.6
        return {
            "mouth_curve": 1.0,
            "mouth_width": 0.4,
            "mouth_open": 0.35 + 0.45 * variant[1] if opened else 0.0,
            "teeth": 1.0 if opened else 0.0,
            "eye_open": -0.35,
            "cheek_raise": 1.0,
            "brow_raise": 0.15,
        }
    if label == "sad":
        return {
            "mouth_curve": -0.9,
            "mouth_width": -0.1,
            "brow_inner": 1.0,
            "brow_raise": 0.05,
            "eye_open": -0.35,
            "lip_press": 0.2,
            "tear": float(variant[0] < 0.35),
        }
    if label == "angry":
        bared = variant[0] < 0.3
        return {
            "mouth_curve": -0.3,
            "mouth_width": -0.3 if not bared else 0.2,
            "lip_press": 1.0 if not bared else 0.5,
            "mouth_open": 0.25 if bared else 0.0,
            "teeth": 1.0 if bared else 0.0,
            "brow_raise": -0.8,
            "brow_inner": -1.1,
            "brow_squeeze": 0.8,
            "eye_open": -0.35,
        }
    if label == "surprise":
        return {
            "mouth_open": 1.0,
            "mouth_round": 1.0,
            "mouth_width": -0.55,
            "brow_raise": 1.0,
            "brow_arch": 0.9,
            "eye_open": 1.1,
        }
    if label == "fear":
        return {
            "mouth_open": 0.35 + 0.35 * variant[1],
            "mouth_width": 0.45,
            "mouth_curve": -0.45,
            "teeth": 0.5,
            "brow_raise": 0.75,
            "brow_inner": 0.75,
            "brow_squeeze": 0.7,
            "eye_open": 1.0,
            "sweat": float(variant[0] < 0.35),
        }
    if label == "disgust":
        return {
            "sneer": 1.3,
            "mouth_curve": -0.5,
            "mouth_open": 0.2,
            "mouth_width": -0.05,
            "teeth": 1.0,
            "nose_wrinkle": 1.0,
            "eye_open": -0.55,
            "brow_raise": -0.4,
            "brow_inner": -0.35,
        }
    return {}  # neutral


def make_expression(label: str, rng: np.random.Generator, intensity: float) -> Expression:
    """Personal quirks plus `intensity` times the label's prototype (each action jittered by +-20%).

    The random draws do not depend on `label`: at intensity 0 every label gives the same face.
    """
    proto = _prototype(label, rng.random(2))
    values = {}
    for f in fields(Expression):
        quirk = rng.normal(0.0, _QUIRKS.get(f.name, 0.0))
        value = quirk + intensity * proto.get(f.name, 0.0) * rng.uniform(0.8, 1.2)
        values[f.name] = max(value, 0.0) if f.name in _NON_NEGATIVE else value
    values["mouth_round"] = min(values["mouth_round"], 1.0)
    return Expression(**values)


# ---------------------------------------------------------------------------------------------
# Colours and geometry

SKIN_TONES: tuple[RGB, ...] = (
    (255, 224, 196),
    (241, 194, 160),
    (224, 172, 130),
    (198, 134, 96),
    (161, 102, 70),
    (120, 75, 50),
    (87, 55, 38),
)
HAIR: tuple[RGB, ...] = ((25, 20, 20), (60, 40, 28), (105, 70, 40), (190, 160, 105), (150, 70, 35), (150, 150, 150))
IRIS: tuple[RGB, ...] = ((70, 45, 25), (40, 30, 20), (60, 100, 150), (70, 110, 70), (110, 90, 60), (100, 120, 130))
MASKS: tuple[RGB, ...] = ((200, 222, 238), (240, 240, 240), (45, 45, 50), (120, 160, 200))


def _pick(rng: np.random.Generator, items: tuple | list):
    return items[int(rng.integers(len(items)))]


def _clamp(x: float, low: float, high: float) -> float:
    return min(max(float(x), low), high)


def _scale(colour: tuple[float, ...], k: float | tuple[float, ...]) -> RGB:
    ks = k if isinstance(k, tuple) else (k, k, k)
    return tuple(int(_clamp(c * m, 0, 255)) for c, m in zip(colour, ks))


def _mix(a: tuple[float, ...], b: tuple[float, ...], t: float) -> RGB:
    """Opaque a..b blend (the face layer is RGBA: translucent paint would let the background through)."""
    return tuple(int(_clamp(x + t * (y - x), 0, 255)) for x, y in zip(a, b))


def _skin(rng: np.random.Generator) -> RGB:
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = min(int(t), len(SKIN_TONES) - 2)
    a, b = np.array(SKIN_TONES[i]), np.array(SKIN_TONES[i + 1])
    mixed = a + (t - i) * (b - a) + rng.normal(0, 5, 3)
    return tuple(int(v) for v in np.clip(mixed, 0, 255))


def _random_colour(rng: np.random.Generator, low: int = 25, high: int = 235) -> RGB:
    return tuple(int(v) for v in rng.integers(low, high, 3))


@dataclass
class _Geo:
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


# ---------------------------------------------------------------------------------------------
# Drawing


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) in [-0.5, 0.5), float32."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - np.float32(0.5)
    return yy, xx


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Plain colour, linear or radial gradient, stripes, checks, soft blobs or a wall with a floor."""
    kind = _pick(rng, ("plain", "linear", "radial", "stripes", "checks", "blobs", "wall"))
    c1, c2 = np.array(_random_colour(rng), float), np.array(_random_colour(rng), float)
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


def _draw_hair_back(d: ImageDraw.ImageDraw, g: _Geo, hair: RGB, style: int) -> None:
    if style == 2:  # long hair falling behind the shoulders
        d.rounded_rectangle(g.box(0, 0.2, 1.28, 1.3), radius=g.w(0.9), fill=hair)
    elif style == 3:  # bun
        d.ellipse(g.box(0, -1.12, 0.45, 0.3), fill=hair)


def _draw_hair_front(d: ImageDraw.ImageDraw, g: _Geo, hair: RGB, style: int, hairline: float) -> None:
    if style == 0:
        return
    side = -0.3
    angles = np.linspace(0, 2 * math.pi, 72, endpoint=False)
    us, vs = 1.07 * np.cos(angles), -0.04 + 1.07 * np.sin(angles)
    top = vs < side
    order = np.argsort(np.where(top, us, np.inf))[: int(top.sum())]
    cap = g.line(us[order], vs[order])
    hu = np.linspace(0.96, -0.96, 25)
    hv = hairline + (side - hairline) * hu**2
    d.polygon(cap + g.line(hu, hv), fill=hair)


def _draw_eye(d: ImageDraw.ImageDraw, g: _Geo, u: float, v: float, e: Expression, look: dict) -> None:
    ew = look["eye_w"]
    eh = ew * _clamp(0.46 * (1 + 0.7 * e.eye_open), 0.07, 0.95)
    ir = 0.5 * ew
    line = look["line"]
    d.ellipse(g.box(u, v, ew, eh * g.rx / g.ry), fill=(238, 236, 230))
    iris_v = min(ir, eh * 0.98)
    du = look["gaze"] * ew * 0.25
    d.ellipse(g.box(u + du, v, ir, iris_v * g.rx / g.ry), fill=look["iris"])
    d.ellipse(g.box(u + du, v, ir * 0.45, min(ir * 0.45, eh * 0.9) * g.rx / g.ry), fill=(15, 10, 10))
    d.ellipse(g.box(u, v, ew, eh * g.rx / g.ry), outline=line, width=g.w(0.018))
    d.arc(g.box(u, v, ew, eh * g.rx / g.ry), 190, 350, fill=line, width=g.w(0.035))
    if e.cheek_raise > 0.4:  # smiling eyes: a crease under the eye
        d.arc(
            g.box(u, v + 0.04, ew * 1.05, (eh + 0.03 * ew) * g.rx / g.ry), 20, 160, fill=look["crease"], width=g.w(0.02)
        )


def _draw_brows(d: ImageDraw.ImageDraw, g: _Geo, e: Expression, look: dict) -> None:
    base = look["eye_v"] - 0.21 - 0.16 * e.brow_raise
    inner_u = 0.14 - 0.06 * e.brow_squeeze
    inner_v = base - 0.15 * e.brow_inner
    outer_v = base + 0.03 * e.brow_inner - 0.02
    mid_v = (inner_v + outer_v) / 2 - 0.035 - 0.05 * e.brow_arch
    t = np.linspace(0, 1, 9)
    for side in (-1, 1):
        us = side * (inner_u + (0.62 - inner_u) * t)
        vs = (1 - t) ** 2 * inner_v + 2 * t * (1 - t) * (2 * mid_v - (inner_v + outer_v) / 2) + t**2 * outer_v
        d.line(g.line(us, vs), fill=look["brow"], width=g.w(look["brow_w"]), joint="curve")
    wrinkle = look["crease"]
    if e.brow_inner < -0.3 and e.brow_squeeze > 0.3:  # frown lines between V-shaped brows
        for side in (-1, 1):
            d.line(
                [g.pt(side * 0.05, inner_v + 0.01), g.pt(side * 0.035, inner_v + 0.13)], fill=wrinkle, width=g.w(0.02)
            )
    if e.brow_raise > 0.4 or e.brow_inner > 0.5:  # forehead lines
        half = 0.38 if e.brow_raise > e.brow_inner else 0.2
        for i in range(3):
            us = np.linspace(-half, half, 9)
            vs = min(inner_v, mid_v) - 0.1 - 0.065 * i + 0.03 * (us / half) ** 2
            d.line(g.line(us, vs), fill=wrinkle, width=g.w(0.018))


def _draw_nose(d: ImageDraw.ImageDraw, g: _Geo, e: Expression, look: dict) -> None:
    shade, line = look["crease"], look["line"]
    d.line([g.pt(0.06, look["eye_v"] + 0.08), g.pt(0.09, 0.2)], fill=shade, width=g.w(0.02))
    flare = 1 + 0.5 * e.nose_wrinkle
    d.arc(g.box(0, 0.24, 0.16 * flare, 0.07), 20, 160, fill=line, width=g.w(0.022))
    for side in (-1, 1):
        d.ellipse(g.box(side * 0.075 * flare, 0.285, 0.035 * flare, 0.018), fill=_scale(look["skin"], 0.45))
    for i in range(round(3 * min(e.nose_wrinkle, 1.0))):  # wrinkles across the bridge
        us = np.linspace(-0.09, 0.09, 7)
        d.line(g.line(us, 0.03 * i + 0.005 - 0.02 * (us / 0.09) ** 2), fill=line, width=g.w(0.02))


def _draw_mouth(d: ImageDraw.ImageDraw, g: _Geo, e: Expression, look: dict, side: int) -> None:
    t = np.linspace(-1, 1, 31)
    mw = _clamp(0.34 * (1 + 0.4 * e.mouth_width), 0.16, 0.55)
    k = 0.18 * e.mouth_curve
    centre = look["mouth_v"] - k * (t**2 - 0.4) - e.sneer * 0.035 * np.clip(side * t, 0, 1)
    lift = e.sneer * 0.09 * np.clip(side * t + 0.25, 0, 1.25) / 1.25 * (1 - np.abs(t) ** 4)
    opening = e.mouth_open * (0.18 + 0.18 * e.mouth_round)
    profile = np.sqrt(np.clip(1 - np.abs(t) ** (2 + 3 * (1 - e.mouth_round)), 0, 1))
    up_share = 0.4 - 0.25 * _clamp(e.mouth_curve, 0, 1)
    upper = centre - opening * up_share * profile - lift
    lower = centre + opening * (1 - up_share) * profile
    us = t * mw
    lip, line = look["lip"], _scale(look["lip"], 0.45)
    taper = (1 - t**2) ** 0.35
    press = _clamp(e.lip_press, 0, 1)
    d.polygon(g.line(us, upper - 0.045 * (1 - 0.8 * press) * taper) + g.line(us[::-1], upper[::-1]), fill=lip)
    d.polygon(g.line(us, lower) + g.line(us[::-1], (lower + 0.065 * (1 - 0.8 * press) * taper)[::-1]), fill=lip)
    if float(np.max(lower - upper)) * g.ry > 1.5:
        d.polygon(g.line(us, upper) + g.line(us[::-1], lower[::-1]), fill=(70, 22, 28))
        if e.teeth > 0.25:
            bottom = np.minimum(upper + 0.07 * min(e.teeth, 1.0), lower)
            d.polygon(g.line(us, upper) + g.line(us[::-1], bottom[::-1]), fill=(240, 237, 226))
        d.line(g.line(us, lower), fill=line, width=g.w(0.02), joint="curve")
    d.line(g.line(us, upper), fill=line, width=g.w(0.022 + 0.02 * press), joint="curve")
    fold = max(e.cheek_raise, e.sneer)
    if fold > 0.3:  # smile / sneer lines from the nose to the mouth corners
        for s in (-1, 1):
            strength = min(fold, 1.0) * (1.0 if e.sneer < 0.3 or s == side else 0.35)
            vs = np.linspace(0.22, look["mouth_v"] + 0.05, 7)
            fu = s * (0.2 + (mw + 0.04 - 0.2) * ((vs - 0.22) / (vs[-1] - 0.22)) ** 0.7)
            d.line(
                g.line(fu, vs), fill=_mix(look["skin"], look["line"], 0.6 * strength), width=g.w(0.022), joint="curve"
            )


def _draw_occlusion(d: ImageDraw.ImageDraw, g: _Geo, kind: str, look: dict, rng: np.random.Generator) -> None:
    if kind == "mask":
        colour = _pick(rng, MASKS)
        for s in (-1, 1):
            d.line([g.pt(s * 0.85, 0.2), g.pt(s * 1.0, -0.1)], fill=_scale(colour, 0.8), width=g.w(0.03))
        d.rounded_rectangle(g.box(0, 0.52, 0.9, 0.45), radius=g.w(0.2), fill=colour)
        for i in range(3):
            d.line(
                [g.pt(-0.8, 0.35 + 0.15 * i), g.pt(0.8, 0.35 + 0.15 * i)], fill=_scale(colour, 0.85), width=g.w(0.02)
            )
    elif kind == "hand":
        skin = look["skin"]
        d.rounded_rectangle(g.box(rng.uniform(-0.1, 0.1), 0.6, 0.58, 0.36), radius=g.w(0.15), fill=skin)
        for i in range(1, 4):
            u = -0.58 + 1.16 * i / 4
            d.line([g.pt(u, 0.28), g.pt(u, 0.85)], fill=_scale(skin, 0.75), width=g.w(0.02))
    elif kind == "shades":
        for s in (-1, 1):
            d.ellipse(g.box(s * look["eye_u"], look["eye_v"] - 0.02, 0.3, 0.2), fill=(20, 20, 25))
        d.line([g.pt(-0.1, look["eye_v"] - 0.05), g.pt(0.1, look["eye_v"] - 0.05)], fill=(20, 20, 25), width=g.w(0.04))


def _look(rng: np.random.Generator) -> dict:
    """Everything about a person that does not depend on the emotion."""
    skin = _skin(rng)
    hair = _pick(rng, HAIR)
    return {
        "skin": skin,
        "line": _scale(skin, 0.45),
        "crease": _scale(skin, 0.72),
        "lip": _scale(skin, (0.82, 0.55, 0.55)),
        "hair": hair,
        "brow": _scale(hair, 0.8) if sum(hair) < 300 else _scale(hair, 0.55),
        "brow_w": rng.uniform(0.05, 0.075),
        "hair_style": int(rng.integers(4)),
        "hairline": rng.uniform(-0.82, -0.7),
        "iris": _pick(rng, IRIS),
        "gaze": rng.uniform(-0.4, 0.4),
        "eye_u": rng.uniform(0.34, 0.4),
        "eye_v": rng.uniform(-0.15, -0.09),
        "eye_w": rng.uniform(0.17, 0.21),
        "mouth_v": rng.uniform(0.48, 0.56),
        "clothes": _random_colour(rng),
        "glasses": rng.random() < 0.12,
    }


def draw_face(
    label: str, rng: np.random.Generator, size: int = 160, intensity: float = 1.0, occlusion: str | None = None
) -> Image.Image:
    """An RGB `size`x`size` drawing of a face showing `label` at `intensity` (0 = neutral, 1 = full).

    `occlusion` (one of OCCLUSIONS) hides or blurs part of the face. Person, pose, background,
    lighting and noise all come from `rng`.
    """
    if label not in EMOTIONS:
        raise ValueError(f"Unknown emotion {label!r}; use one of {', '.join(EMOTIONS)}.")
    if occlusion is not None and occlusion not in OCCLUSIONS:
        raise ValueError(f"Unknown occlusion {occlusion!r}; use one of {', '.join(OCCLUSIONS)}.")
    e = make_expression(label, rng, intensity)
    look = _look(rng)
    canvas = size * SUPERSAMPLE
    ry = canvas * rng.uniform(*FACE_HEIGHT)
    cx, cy = canvas * (0.5 + rng.uniform(-FACE_SHIFT, FACE_SHIFT, 2))
    g = _Geo(cx, cy, ry * rng.uniform(0.74, 0.86), ry)
    skin = look["skin"]

    layer = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    _draw_hair_back(d, g, look["hair"], look["hair_style"])
    d.polygon([g.pt(-0.36, 0.5), g.pt(0.36, 0.5), g.pt(0.42, 1.7), g.pt(-0.42, 1.7)], fill=_scale(skin, 0.85))
    d.ellipse(g.box(0, 2.05, 2.3, 0.8), fill=look["clothes"])
    for s in (-1, 1):
        d.ellipse(g.box(s * 0.98, -0.02, 0.14, 0.2), fill=_scale(skin, 0.92))
    d.ellipse(g.box(0, 0, 1, 1), fill=skin, outline=look["crease"], width=g.w(0.015))
    if e.cheek_raise > 0.3:
        for s in (-1, 1):
            d.ellipse(g.box(s * 0.52, 0.2, 0.17, 0.11), fill=_mix(skin, (225, 95, 95), 0.22 * min(e.cheek_raise, 1.0)))
    for s in (-1, 1):
        _draw_eye(d, g, s * look["eye_u"], look["eye_v"], e, look)
    _draw_brows(d, g, e, look)
    _draw_nose(d, g, e, look)
    _draw_mouth(d, g, e, look, side=1 if rng.random() < 0.5 else -1)
    _draw_hair_front(d, g, look["hair"], look["hair_style"], look["hairline"])
    if look["glasses"]:
        for s in (-1, 1):
            d.ellipse(g.box(s * look["eye_u"], look["eye_v"], 0.27, 0.17), outline=(30, 30, 35), width=g.w(0.025))
        d.line([g.pt(-0.1, look["eye_v"]), g.pt(0.1, look["eye_v"])], fill=(30, 30, 35), width=g.w(0.025))
    if e.tear > 0.5:
        x, y = g.pt(-look["eye_u"], look["eye_v"] + 0.16)
        r = 0.045 * g.ry
        d.ellipse((x - r, y, x + r, y + 2 * r), fill=(170, 210, 240))
        d.polygon([(x - r * 0.8, y + r * 0.6), (x + r * 0.8, y + r * 0.6), (x, y - 1.2 * r)], fill=(170, 210, 240))
    if e.sweat > 0.5:
        x, y = g.pt(0.62, -0.55)
        r = 0.05 * g.ry
        d.ellipse((x - r, y, x + r, y + 2 * r), fill=(190, 225, 245))
        d.polygon([(x - r * 0.8, y + r * 0.6), (x + r * 0.8, y + r * 0.6), (x, y - 1.3 * r)], fill=(190, 225, 245))
    if occlusion in ("mask", "hand", "shades"):
        _draw_occlusion(d, g, occlusion, look, rng)

    face = layer.convert("RGBa").reduce(SUPERSAMPLE)  # premultiplied: no dark fringes
    centre = (g.cx / SUPERSAMPLE, g.cy / SUPERSAMPLE)
    face = face.rotate(rng.uniform(-MAX_TILT, MAX_TILT), resample=Image.BILINEAR, center=centre).convert("RGBA")
    background = Image.fromarray(np.clip(_background(rng, size), 0, 255).astype(np.uint8)).convert("RGBA")
    image = Image.alpha_composite(background, face).convert("RGB")
    if occlusion == "blur":
        image = image.filter(ImageFilter.GaussianBlur(size * rng.uniform(0.02, 0.035)))
    elif occlusion == "pixelate":
        blocks = int(rng.integers(12, 19))
        image = image.resize((blocks, blocks), Image.BILINEAR).resize((size, size), Image.NEAREST)
    return _light_and_noise(image, rng)


def _light_and_noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Directional lighting, brightness, a colour cast and sensor noise."""
    size = image.size[0]
    yy, xx = _grid(size)
    angle = rng.uniform(0, 2 * math.pi)
    light = rng.uniform(0.75, 1.15) + rng.uniform(0, 0.5) * (xx * math.cos(angle) + yy * math.sin(angle))
    cast = (1 + rng.uniform(-0.06, 0.06, 3)).astype(np.float32)
    pixels = np.asarray(image, dtype=np.float32) * light[..., None] * cast
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(rng.uniform(0, 9))
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------------------------------------
# Sentences

TIMES = (
    "today",
    "this morning",
    "tonight",
    "last night",
    "yesterday",
    "this afternoon",
    "right now",
    "this week",
    "again",
    "at work today",
    "on the way home",
    "over the weekend",
)
INTENSIFIERS = ("really", "so", "very", "incredibly", "pretty", "absolutely", "genuinely", "extremely", "honestly", "")
PEOPLE = (
    "my sister",
    "my boss",
    "my best friend",
    "our neighbour",
    "my dad",
    "my mum",
    "a colleague",
    "my roommate",
    "the landlord",
    "my teacher",
    "my brother",
    "my partner",
    "Sam",
    "Priya",
    "Carlos",
    "my cousin",
)
THINGS = (
    "the new schedule",
    "the plan for tomorrow",
    "the move",
    "the results",
    "the trip",
    "the new job",
    "the meeting",
    "the exam",
    "the news",
    "the weekend",
)

_VOCAB: dict[str, dict[str, tuple[str, ...]]] = {
    "happy": {
        "adj": (
            "happy",
            "thrilled",
            "delighted",
            "overjoyed",
            "glad",
            "excited",
            "cheerful",
            "over the moon",
            "ecstatic",
            "in such a good mood",
            "proud and happy",
        ),
        "event": (
            "I got the job I applied for",
            "my sister had a healthy baby girl",
            "we won the final",
            "my best friend got me concert tickets",
            "I passed my driving test",
            "the sun came out for our picnic",
            "my paper got accepted",
            "we adopted a puppy",
            "my grandparents came to visit",
            "I finished my first marathon",
            "I got a raise",
            "we moved into our first home",
            "my team loved my idea",
            "the kids made me breakfast",
        ),
        "templates": (
            "I'm {intens} {adj} {time}!",
            "{event}, and I'm {intens} {adj}.",
            "{event} {time}, best day in ages!",
            "I can't stop smiling since {event}.",
            "Guess what? {event}! I'm {adj}.",
            "Feeling {intens} {adj}, {event}.",
            "{who} made me laugh so hard {time}, I love it.",
            "This is the best news, {event}!",
            "Everything went right {time}, I'm {adj}.",
            "What a lovely day, {event}.",
            "So {adj} that {event}!",
            "We celebrated {time} because {event}.",
            "I'm in a great mood, {event}.",
            "Yay, {event}!",
            "Life feels wonderful {time}.",
            "I'm grinning from ear to ear, {event}.",
            "Such a joy {time}: {event}.",
            "I love this so much, {event}!",
        ),
    },
    "sad": {
        "adj": (
            "sad",
            "heartbroken",
            "down",
            "miserable",
            "depressed",
            "gloomy",
            "lonely",
            "devastated",
            "unhappy",
            "blue",
            "crushed",
        ),
        "event": (
            "my dog passed away",
            "my grandmother is in the hospital",
            "my best friend moved across the country",
            "I didn't get into the programme I wanted",
            "we had to say goodbye at the airport",
            "my partner and I broke up",
            "nobody came to my birthday dinner",
            "I lost my job",
            "my old cat died",
            "I failed the exam after all that studying",
            "the house I grew up in was sold",
            "I miss my family so much",
            "my grandfather's funeral was today",
        ),
        "templates": (
            "I'm {intens} {adj} {time}.",
            "{event}, and I feel {adj}.",
            "I'm not happy {time}, {event}.",
            "I'm not happy at all, {event}.",
            "I don't feel like doing anything since {event}.",
            "I cried all night because {event}.",
            "{event}. I miss how things used to be.",
            "Feeling {adj} {time}, {event}.",
            "It hurts so much that {event}.",
            "I just want to stay in bed, {event}.",
            "Nothing feels good anymore since {event}.",
            "My heart is heavy {time}, {event}.",
            "I can't stop crying, {event}.",
            "Everything feels grey {time}, I'm {adj}.",
            "I'm not okay, {event}.",
            "I feel so empty {time}.",
            "Tears keep coming, {event}.",
        ),
    },
    "angry": {
        "adj": (
            "angry",
            "furious",
            "annoyed",
            "livid",
            "fed up",
            "irritated",
            "mad",
            "fuming",
            "outraged",
            "frustrated",
        ),
        "event": (
            "someone scratched my car and drove off",
            "my landlord raised the rent again without asking",
            "the airline lost my luggage and nobody will help",
            "my coworker took credit for my work",
            "the neighbours blasted music until 3am",
            "they cancelled my appointment after I waited two hours",
            "the shop charged me twice and refuses a refund",
            "someone cut in front of me in the queue",
            "my roommate ate my food again",
            "the contractor never showed up",
            "they ignored my complaint for the third time",
            "my boss yelled at me in front of everyone",
        ),
        "templates": (
            "I'm {intens} {adj}, {event}.",
            "{event}, and I'm {adj}!",
            "I'm not happy about this at all, {event}.",
            "I'm not okay with how {who} treated me {time}.",
            "How dare they, {event}!",
            "{event}. Unbelievable, I'm {adj}.",
            "This makes my blood boil: {event}.",
            "I've had it with {who}, {event}.",
            "Stop wasting my time! {event}.",
            "I'm so sick of this, {event}.",
            "{who} lied to me {time} and I'm {adj}.",
            "I could scream, {event}.",
            "I am not happy with {who}, they broke their promise again.",
            "Seriously? {event}. I'm {adj}.",
            "That's it, I'm done being nice, {event}.",
            "I'm seething {time}, {event}.",
        ),
    },
    "fear": {
        "adj": (
            "scared",
            "terrified",
            "afraid",
            "frightened",
            "anxious",
            "nervous",
            "panicked",
            "petrified",
            "worried sick",
            "on edge",
        ),
        "event": (
            "I heard footsteps behind me in a dark alley",
            "someone is trying to open my front door",
            "the plane started shaking violently",
            "I need surgery next week",
            "a huge dog chased me down the street",
            "the doctor wants to run more tests",
            "there was a loud crash downstairs at midnight",
            "the car skidded on the ice",
            "I got lost alone in the woods",
            "the smoke alarm went off and I smelled fire",
            "a stranger has been following me home",
            "the lights went out during the storm",
        ),
        "templates": (
            "I'm {intens} {adj}, {event}.",
            "{event} and I'm {adj}.",
            "My hands are shaking, {event}.",
            "I don't feel safe {time}, {event}.",
            "Please help, {event}!",
            "I'm {adj} something terrible will happen {time}.",
            "What if it happens again? I'm {intens} {adj}.",
            "My heart is pounding, {event}.",
            "I can't sleep, {event}.",
            "I'm too {adj} to go outside {time}.",
            "I'm dreading {thing}, I'm {adj}.",
            "I froze when {event}.",
            "Something is wrong, {event}, I'm {adj}.",
            "I'm trembling {time}, {event}.",
            "I keep imagining the worst, {event}.",
        ),
    },
    "disgust": {
        "adj": ("disgusted", "grossed out", "repulsed", "sickened", "nauseated", "revolted", "appalled"),
        "event": (
            "I found mould all over the bread",
            "there was a hair in my soup",
            "the fridge smelled like rotten eggs",
            "someone spat on the pavement right next to me",
            "the station toilets were filthy",
            "my roommate left dirty dishes crawling with maggots",
            "the milk had gone sour and lumpy",
            "a cockroach ran across the restaurant table",
            "the man on the bus picked his nose and wiped it on the seat",
            "I stepped in something slimy",
            "the meat in the pack had turned green",
            "the bin was overflowing and stinking",
        ),
        "templates": (
            "Ew, {event}.",
            "Gross! {event}.",
            "I'm {intens} {adj}, {event}.",
            "{event}, it made me want to throw up.",
            "That's revolting, {event}.",
            "Yuck, {event}, so nasty.",
            "I can't stand it, {event}.",
            "I feel sick thinking about how {event}.",
            "{event}. Absolutely disgusting.",
            "I'm {adj} by the way {who} behaved {time}.",
            "The smell was vile, {event}.",
            "Ugh, {event}, I nearly gagged.",
            "So filthy and gross, {event}.",
            "That is vile, {who} is so disgusting.",
        ),
    },
    "surprise": {
        "adj": ("surprised", "shocked", "amazed", "astonished", "stunned", "speechless", "blown away"),
        "event": (
            "my brother showed up at my door after five years abroad",
            "I won a raffle I forgot I entered",
            "my friends threw me a surprise party",
            "it snowed in the middle of July",
            "my quiet neighbour turned out to be a famous drummer",
            "the package arrived a week early",
            "my old teacher recognised me on the train",
            "I found a hundred dollars in an old coat",
            "the exam was cancelled at the last minute",
            "my shy cousin announced she's getting married",
            "the ending of the film came out of nowhere",
        ),
        "templates": (
            "Wow, {event}!",
            "I can't believe it, {event}!",
            "No way! {event}.",
            "I'm {intens} {adj}, {event}!",
            "I did not see that coming, {event}.",
            "What?! {event}!",
            "Whoa, {event}, I'm {adj}.",
            "Out of nowhere, {event}.",
            "I was totally {adj} {time}, {event}.",
            "Never expected this: {event}!",
            "Oh my gosh, {event}!",
            "My jaw dropped when {event}.",
            "Wait, really? {event}!",
            "I'm still in shock, {event}.",
        ),
    },
    "neutral": {
        "adj": ("fine", "okay", "calm", "alright", "indifferent", "relaxed", "neither happy nor sad"),
        "event": (
            "I did the laundry and answered some emails",
            "I went to work and came home",
            "I had a sandwich for lunch",
            "the day went as planned",
            "I caught up on some reading",
            "the meeting covered the usual topics",
            "I walked to the shop and back",
            "I cleaned the kitchen",
            "nothing much happened",
            "I watered the plants",
        ),
        "templates": (
            "I feel {adj} {time}, nothing special.",
            "Just a normal day, {event}.",
            "Nothing much to report, {event}.",
            "{event}, an ordinary day really.",
            "I don't have strong feelings about {thing} either way.",
            "It's fine, I don't mind either way.",
            "I'm {adj} about {thing}, no big deal.",
            "Same as usual {time}: {event}.",
            "I'm not bothered, {event}.",
            "It was a regular day, {event}.",
            "Things are steady {time}, {event}.",
            "No complaints, no excitement, {event}.",
            "I feel {adj}, it was an uneventful day.",
            "Meh, {thing} is whatever, I'm {adj}.",
        ),
    },
}

# Uninformative sentences, the same for every label.
_UNCLEAR_TEMPLATES = (
    "I got a letter today.",
    "It is {weekday}.",
    "{who} called me {time}.",
    "I read the message {time}.",
    "The results came in {time}.",
    "We talked about {thing} {time}.",
    "The meeting moved to {clock}.",
    "I took the bus to {place}.",
    "There is a {object} on the table.",
    "{who} said something about {thing}.",
    "Someone knocked on the door {time}.",
    "I opened the box.",
    "I saw {who} at {place} {time}.",
    "The email arrived at {clock}.",
    "We had {food} for dinner.",
    "I looked at the photo again.",
    "The phone rang at {clock}.",
    "I just got back from {place}.",
    "Look at my face.",
    "This is me {time}.",
    "So, that happened.",
    "Let me tell you about {thing}.",
    "{who} told me the news {time}.",
    "I checked my bank account {time}.",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_CLOCKS = ("9 am", "noon", "half past two", "4 pm", "six o'clock", "7:30")
_PLACES = ("the station", "the office", "the supermarket", "my parents' place", "the library", "the clinic")
_OBJECTS = ("letter", "package", "note", "phone", "key", "cup", "envelope")
_FOODS = ("pasta", "rice and beans", "soup", "leftovers", "pizza", "curry")


def make_sentence(label: str, rng: np.random.Generator, clear: bool = True) -> str:
    """A sentence that expresses `label`, or, when not `clear`, one that gives no hint of any emotion."""
    if label not in EMOTIONS:
        raise ValueError(f"Unknown emotion {label!r}; use one of {', '.join(EMOTIONS)}.")
    slots = {
        "time": _pick(rng, TIMES),
        "intens": _pick(rng, INTENSIFIERS),
        "who": _pick(rng, PEOPLE),
        "thing": _pick(rng, THINGS),
    }
    if clear:
        vocab = _VOCAB[label]
        slots |= {"adj": _pick(rng, vocab["adj"]), "event": _pick(rng, vocab["event"])}
        template = _pick(rng, vocab["templates"])
    else:
        slots |= {
            "weekday": _pick(rng, _WEEKDAYS),
            "clock": _pick(rng, _CLOCKS),
            "place": _pick(rng, _PLACES),
            "object": _pick(rng, _OBJECTS),
            "food": _pick(rng, _FOODS),
        }
        template = _pick(rng, _UNCLEAR_TEMPLATES)
    text = " ".join(template.format(**slots).split())  # an empty intensifier leaves a double space
    text = text.replace(" ,", ",").replace(" .", ".").replace(" !", "!")
    text = text[0].upper() + text[1:]
    style = rng.random()
    if style < 0.08:  # casual typing
        text = text.lower()
    elif style < 0.14:
        text = text.rstrip(".!")
    return text


# ---------------------------------------------------------------------------------------------
# Datasets


@dataclass(frozen=True)
class Sample:
    """One generated row."""

    image: Image.Image
    text: str
    label: str
    face_clear: bool
    text_clear: bool


def plan(n: int, seed: int, ambiguous_face: float, ambiguous_text: float) -> list[tuple[str, bool, bool]]:
    """(label, face_clear, text_clear) per row: balanced labels, exact ambiguity shares spread over labels."""
    rng = np.random.default_rng([seed, 0])
    labels = np.array([EMOTIONS[i % len(EMOTIONS)] for i in range(n)])[rng.permutation(n)]
    order = [int(i) for label in EMOTIONS for i in rng.permutation(np.flatnonzero(labels == label))]
    n_face = int(n * ambiguous_face + 0.5)
    n_text = min(int(n * ambiguous_text + 0.5), n - n_face)
    face_pos = {int((k + 0.5) * n / n_face) for k in range(n_face)}
    rest = [p for p in range(n) if p not in face_pos]
    text_pos = {rest[int((k + 0.5) * len(rest) / n_text)] for k in range(n_text)}
    rows: list[tuple[str, bool, bool]] = [("", True, True)] * n
    for position, index in enumerate(order):
        rows[index] = (str(labels[index]), position not in face_pos, position not in text_pos)
    return rows


def make_sample(index: int, seed: int, label: str, face_clear: bool, text_clear: bool, size: int = 160) -> Sample:
    """Row `index` of a dataset; it depends only on its arguments, never on other rows."""
    face_rng = np.random.default_rng([seed, 1, index])
    text_rng = np.random.default_rng([seed, 2, index])
    if face_clear:
        image = draw_face(label, face_rng, size, face_rng.uniform(*CLEAR_INTENSITY))
    else:
        intensity = face_rng.uniform(*UNCLEAR_INTENSITY)
        occlusion = _pick(face_rng, (None, None, *OCCLUSIONS))
        image = draw_face(label, face_rng, size, intensity, occlusion)
    return Sample(image, make_sentence(label, text_rng, clear=text_clear), label, face_clear, text_clear)


Rendered = tuple[bytes, str, str, bool, bool]  # png, text, label, face_clear, text_clear


def _render(job: tuple[int, int, str, bool, bool, int]) -> Rendered:
    index, seed, label, face_clear, text_clear, size = job
    s = make_sample(index, seed, label, face_clear, text_clear, size)
    return png_bytes(s.image), s.text, s.label, s.face_clear, s.text_clear


def _render_all(jobs: list[tuple[int, int, str, bool, bool, int]], workers: int) -> Iterator[Rendered]:
    """Rendered rows in order; with `workers` > 1 in that many processes (the output does not change)."""
    if workers <= 1:
        yield from map(_render, jobs)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_render, jobs, chunksize=16)


def png_bytes(image: Image.Image) -> bytes:
    """PNG without metadata, so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


def generate(
    out_dir: Path,
    n: int = 700,
    seed: int = 0,
    image_size: int = 160,
    ambiguous_face: float = 0.25,
    ambiguous_text: float = 0.25,
    fmt: str = "csv",
    progress: bool = False,
    workers: int = 1,
) -> Path:
    """Write `n` samples to `out_dir`; returns `out_dir/data.csv` ("csv") or `out_dir` ("disk").

    `workers` > 1 renders in that many processes; `progress` shows a tqdm bar.
    """
    problem = _check(n, seed, image_size, ambiguous_face, ambiguous_text, fmt)
    if problem:
        raise ValueError(problem)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(i, seed, *row, image_size) for i, row in enumerate(plan(n, seed, ambiguous_face, ambiguous_text))]
    rendered = tqdm(_render_all(jobs, workers), total=n, desc="synthetic", unit="sample", disable=not progress)
    if fmt == "disk":
        return _write_disk(out_dir, rendered)
    (out_dir / "images").mkdir(exist_ok=True)
    csv_path = out_dir / "data.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_path", "text", "label", "face_clear", "text_clear"])
        for i, (png, text, label, face_clear, text_clear) in enumerate(rendered):
            name = f"images/{i:05d}.png"
            (out_dir / name).write_bytes(png)
            writer.writerow([name, text, label, face_clear, text_clear])
    return csv_path


def _write_disk(out_dir: Path, rendered: Iterable[Rendered]) -> Path:
    from datasets import ClassLabel, Dataset, Features, Value
    from datasets import Image as ImageFeature

    features = Features(
        {
            "image": ImageFeature(),
            "text": Value("string"),
            "label": ClassLabel(names=list(EMOTIONS)),
            "face_clear": Value("bool"),
            "text_clear": Value("bool"),
        }
    )
    columns: dict[str, list] = {name: [] for name in features}
    for i, (png, text, label, face_clear, text_clear) in enumerate(rendered):
        columns["image"].append({"bytes": png, "path": f"{i:05d}.png"})
        columns["text"].append(text)
        columns["label"].append(EMOTIONS.index(label))
        columns["face_clear"].append(face_clear)
        columns["text_clear"].append(text_clear)
    Dataset.from_dict(columns, features=features).save_to_disk(str(out_dir))
    return out_dir


def _check(n: int, seed: int, image_size: int, ambiguous_face: float, ambiguous_text: float, fmt: str) -> str | None:
    """Why these arguments are invalid, or None."""
    if n < len(EMOTIONS):
        return f"--n must be at least {len(EMOTIONS)} (one sample per emotion), got {n}"
    if seed < 0:
        return f"--seed must be >= 0, got {seed}"
    if image_size < 48:
        return f"--image-size must be at least 48 pixels, got {image_size}"
    for name, share in (("ambiguous-face", ambiguous_face), ("ambiguous-text", ambiguous_text)):
        if not 0.0 <= share <= 1.0:
            return f"--{name} must be a share in [0, 1], got {share}"
    total = ambiguous_face + ambiguous_text
    if total > 1.0 + 1e-9:
        return f"--ambiguous-face + --ambiguous-text must be <= 1 (a row is never ambiguous twice), got {total:g}"
    if fmt not in FORMATS:
        return f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}"
    return None


def main(argv: list[str] | None = None) -> Path:
    """CLI entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m train.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--n", type=int, default=700, help="number of samples (default 700)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--image-size", type=int, default=160, help="image side in pixels (default 160)")
    parser.add_argument("--ambiguous-face", type=float, default=0.25, help="share of rows with an unclear face")
    parser.add_argument("--ambiguous-text", type=float, default=0.25, help="share of rows with an unclear text")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="csv: data.csv + images/; disk: save_to_disk")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8), help="rendering processes")
    args = parser.parse_args(argv)
    problem = _check(args.n, args.seed, args.image_size, args.ambiguous_face, args.ambiguous_text, args.format)
    if problem:
        parser.error(problem)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    path = generate(
        args.out,
        args.n,
        args.seed,
        args.image_size,
        args.ambiguous_face,
        args.ambiguous_text,
        args.format,
        progress=True,
        workers=args.workers,
    )
    print(f"Wrote {args.n} samples to {path}")
    return path


if __name__ == "__main__":
    main()
