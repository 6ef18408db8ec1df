"""Drawn faces whose expression follows the emotion label (part of the generated dataset, `train.synthetic`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fusion.labels import EMOTIONS

RGB = tuple[int, int, int]
SUPERSAMPLE = 2  # faces are drawn at 2x and downsampled, for smooth edges
CLEAR_INTENSITY = (0.6, 1.0)
UNCLEAR_INTENSITY = (0.0, 0.08)
FACE_HEIGHT = (0.30, 0.36)  # half the face height, as a share of the image side
FACE_SHIFT = 0.025  # largest offset of the face centre from the image centre, as a share of the side
MAX_TILT = 5.0  # degrees
OCCLUSIONS = ("blur", "mask", "hand", "shades", "pixelate")

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


def pick(rng: np.random.Generator, items: tuple | list):
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
    kind = pick(rng, ("plain", "linear", "radial", "stripes", "checks", "blobs", "wall"))
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
        colour = pick(rng, MASKS)
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
    hair = pick(rng, HAIR)
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
        "iris": pick(rng, IRIS),
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
