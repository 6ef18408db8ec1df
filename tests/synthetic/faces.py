"""Drawn faces whose expression follows the emotion label, with a random person, pose, scene and occlusion."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fusion.labels import EMOTIONS
from tests.synthetic.common import Geo, mix, scale
from tests.synthetic.expression import make_expression
from tests.synthetic.parts import (
    draw_brows,
    draw_eye,
    draw_hair_back,
    draw_hair_front,
    draw_mouth,
    draw_nose,
    draw_occlusion,
)
from tests.synthetic.person import make_look
from tests.synthetic.scene import background, light_and_noise

SUPERSAMPLE = 2  # faces are drawn at 2x and downsampled, for smooth edges
FACE_HEIGHT = (0.30, 0.36)  # half the face height, as a share of the image side
FACE_SHIFT = 0.025  # largest offset of the face centre from the image centre, as a share of the side
MAX_TILT = 5.0  # degrees
OCCLUSIONS = ("blur", "mask", "hand", "shades", "pixelate")


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
    look = make_look(rng)
    canvas = size * SUPERSAMPLE
    ry = canvas * rng.uniform(*FACE_HEIGHT)
    cx, cy = canvas * (0.5 + rng.uniform(-FACE_SHIFT, FACE_SHIFT, 2))
    g = Geo(cx, cy, ry * rng.uniform(0.74, 0.86), ry)
    skin = look["skin"]

    layer = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    draw_hair_back(d, g, look["hair"], look["hair_style"])
    d.polygon([g.pt(-0.36, 0.5), g.pt(0.36, 0.5), g.pt(0.42, 1.7), g.pt(-0.42, 1.7)], fill=scale(skin, 0.85))
    d.ellipse(g.box(0, 2.05, 2.3, 0.8), fill=look["clothes"])
    for s in (-1, 1):
        d.ellipse(g.box(s * 0.98, -0.02, 0.14, 0.2), fill=scale(skin, 0.92))
    d.ellipse(g.box(0, 0, 1, 1), fill=skin, outline=look["crease"], width=g.w(0.015))
    if e.cheek_raise > 0.3:
        for s in (-1, 1):
            d.ellipse(g.box(s * 0.52, 0.2, 0.17, 0.11), fill=mix(skin, (225, 95, 95), 0.22 * min(e.cheek_raise, 1.0)))
    for s in (-1, 1):
        draw_eye(d, g, s * look["eye_u"], look["eye_v"], e, look)
    draw_brows(d, g, e, look)
    draw_nose(d, g, e, look)
    draw_mouth(d, g, e, look, side=1 if rng.random() < 0.5 else -1)
    draw_hair_front(d, g, look["hair"], look["hair_style"], look["hairline"])
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
        draw_occlusion(d, g, occlusion, look, rng)

    face = layer.convert("RGBa").reduce(SUPERSAMPLE)  # premultiplied: no dark fringes
    centre = (g.cx / SUPERSAMPLE, g.cy / SUPERSAMPLE)
    face = face.rotate(rng.uniform(-MAX_TILT, MAX_TILT), resample=Image.BILINEAR, center=centre).convert("RGBA")
    scene = Image.fromarray(np.clip(background(rng, size), 0, 255).astype(np.uint8)).convert("RGBA")
    image = Image.alpha_composite(scene, face).convert("RGB")
    if occlusion == "blur":
        image = image.filter(ImageFilter.GaussianBlur(size * rng.uniform(0.02, 0.035)))
    elif occlusion == "pixelate":
        blocks = int(rng.integers(12, 19))
        image = image.resize((blocks, blocks), Image.BILINEAR).resize((size, size), Image.NEAREST)
    return light_and_noise(image, rng)
