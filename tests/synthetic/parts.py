"""Drawing the parts of a face (hair, eyes, brows, nose, mouth, occlusions) on a face-relative grid."""

from __future__ import annotations

import math

import numpy as np
from PIL import ImageDraw

from tests.synthetic.common import RGB, Geo, clamp, mix, pick, scale
from tests.synthetic.expression import Expression
from tests.synthetic.person import PALETTE


def draw_hair_back(d: ImageDraw.ImageDraw, g: Geo, hair: RGB, style: int) -> None:
    if style == 2:  # long hair falling behind the shoulders
        d.rounded_rectangle(g.box(0, 0.2, 1.28, 1.3), radius=g.w(0.9), fill=hair)
    elif style == 3:  # bun
        d.ellipse(g.box(0, -1.12, 0.45, 0.3), fill=hair)


def draw_hair_front(d: ImageDraw.ImageDraw, g: Geo, hair: RGB, style: int, hairline: float) -> None:
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


def draw_eye(d: ImageDraw.ImageDraw, g: Geo, u: float, v: float, e: Expression, look: dict) -> None:
    ew = look["eye_w"]
    eh = ew * clamp(0.46 * (1 + 0.7 * e.eye_open), 0.07, 0.95)
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


def draw_brows(d: ImageDraw.ImageDraw, g: Geo, e: Expression, look: dict) -> None:
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


def draw_nose(d: ImageDraw.ImageDraw, g: Geo, e: Expression, look: dict) -> None:
    shade, line = look["crease"], look["line"]
    d.line([g.pt(0.06, look["eye_v"] + 0.08), g.pt(0.09, 0.2)], fill=shade, width=g.w(0.02))
    flare = 1 + 0.5 * e.nose_wrinkle
    d.arc(g.box(0, 0.24, 0.16 * flare, 0.07), 20, 160, fill=line, width=g.w(0.022))
    for side in (-1, 1):
        d.ellipse(g.box(side * 0.075 * flare, 0.285, 0.035 * flare, 0.018), fill=scale(look["skin"], 0.45))
    for i in range(round(3 * min(e.nose_wrinkle, 1.0))):  # wrinkles across the bridge
        us = np.linspace(-0.09, 0.09, 7)
        d.line(g.line(us, 0.03 * i + 0.005 - 0.02 * (us / 0.09) ** 2), fill=line, width=g.w(0.02))


def draw_mouth(d: ImageDraw.ImageDraw, g: Geo, e: Expression, look: dict, side: int) -> None:
    t = np.linspace(-1, 1, 31)
    mw = clamp(0.34 * (1 + 0.4 * e.mouth_width), 0.16, 0.55)
    k = 0.18 * e.mouth_curve
    centre = look["mouth_v"] - k * (t**2 - 0.4) - e.sneer * 0.035 * np.clip(side * t, 0, 1)
    lift = e.sneer * 0.09 * np.clip(side * t + 0.25, 0, 1.25) / 1.25 * (1 - np.abs(t) ** 4)
    opening = e.mouth_open * (0.18 + 0.18 * e.mouth_round)
    profile = np.sqrt(np.clip(1 - np.abs(t) ** (2 + 3 * (1 - e.mouth_round)), 0, 1))
    up_share = 0.4 - 0.25 * clamp(e.mouth_curve, 0, 1)
    upper = centre - opening * up_share * profile - lift
    lower = centre + opening * (1 - up_share) * profile
    us = t * mw
    lip, line = look["lip"], scale(look["lip"], 0.45)
    taper = (1 - t**2) ** 0.35
    press = clamp(e.lip_press, 0, 1)
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
                g.line(fu, vs), fill=mix(look["skin"], look["line"], 0.6 * strength), width=g.w(0.022), joint="curve"
            )


def draw_occlusion(d: ImageDraw.ImageDraw, g: Geo, kind: str, look: dict, rng: np.random.Generator) -> None:
    """A face mask, a hand over the mouth or sunglasses."""
    if kind == "mask":
        colour = pick(rng, PALETTE["mask"])
        for s in (-1, 1):
            d.line([g.pt(s * 0.85, 0.2), g.pt(s * 1.0, -0.1)], fill=scale(colour, 0.8), width=g.w(0.03))
        d.rounded_rectangle(g.box(0, 0.52, 0.9, 0.45), radius=g.w(0.2), fill=colour)
        for i in range(3):
            d.line([g.pt(-0.8, 0.35 + 0.15 * i), g.pt(0.8, 0.35 + 0.15 * i)], fill=scale(colour, 0.85), width=g.w(0.02))
    elif kind == "hand":
        skin = look["skin"]
        d.rounded_rectangle(g.box(rng.uniform(-0.1, 0.1), 0.6, 0.58, 0.36), radius=g.w(0.15), fill=skin)
        for i in range(1, 4):
            u = -0.58 + 1.16 * i / 4
            d.line([g.pt(u, 0.28), g.pt(u, 0.85)], fill=scale(skin, 0.75), width=g.w(0.02))
    elif kind == "shades":
        for s in (-1, 1):
            d.ellipse(g.box(s * look["eye_u"], look["eye_v"] - 0.02, 0.3, 0.2), fill=(20, 20, 25))
        d.line([g.pt(-0.1, look["eye_v"] - 0.05), g.pt(0.1, look["eye_v"] - 0.05)], fill=(20, 20, 25), width=g.w(0.04))
