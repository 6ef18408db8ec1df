"""Facial action parameters for each emotion, at a random intensity and with personal quirks."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


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


# Per-person quirks (standard deviations): a neutral face is never perfectly symmetric or straight.
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
