"""A person's look (skin, hair, eyes, proportions, clothes): everything that does not depend on the emotion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.synthetic.common import RGB, pick, random_colour, scale

# Colour tables: "skin" (light to dark, blended between neighbours), "hair", "iris" and face "mask".
PALETTE: dict[str, tuple[RGB, ...]] = {
    name: tuple(tuple(colour) for colour in colours)
    for name, colours in json.loads((Path(__file__).parent / "palette.json").read_text(encoding="utf-8")).items()
}


def _skin(rng: np.random.Generator) -> RGB:
    tones = PALETTE["skin"]
    t = rng.uniform(0, len(tones) - 1)
    i = min(int(t), len(tones) - 2)
    a, b = np.array(tones[i]), np.array(tones[i + 1])
    mixed = a + (t - i) * (b - a) + rng.normal(0, 5, 3)
    return tuple(int(v) for v in np.clip(mixed, 0, 255))


def make_look(rng: np.random.Generator) -> dict:
    """Colours, hair style, eye and mouth placement, gaze, clothes and glasses of a random person."""
    skin = _skin(rng)
    hair = pick(rng, PALETTE["hair"])
    return {
        "skin": skin,
        "line": scale(skin, 0.45),
        "crease": scale(skin, 0.72),
        "lip": scale(skin, (0.82, 0.55, 0.55)),
        "hair": hair,
        "brow": scale(hair, 0.8) if sum(hair) < 300 else scale(hair, 0.55),
        "brow_w": rng.uniform(0.05, 0.075),
        "hair_style": int(rng.integers(4)),
        "hairline": rng.uniform(-0.82, -0.7),
        "iris": pick(rng, PALETTE["iris"]),
        "gaze": rng.uniform(-0.4, 0.4),
        "eye_u": rng.uniform(0.34, 0.4),
        "eye_v": rng.uniform(-0.15, -0.09),
        "eye_w": rng.uniform(0.17, 0.21),
        "mouth_v": rng.uniform(0.48, 0.56),
        "clothes": random_colour(rng),
        "glasses": rng.random() < 0.12,
    }
