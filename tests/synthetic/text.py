"""Sentences for each emotion, clear or deliberately uninformative, from the word lists in `vocabulary/`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fusion.labels import EMOTIONS
from tests.synthetic.common import pick


def _load(name: str) -> dict:
    return json.loads((Path(__file__).parent / "vocabulary" / f"{name}.json").read_text(encoding="utf-8"))


# Slot -> words for every template. Slots are drawn in file order, so reordering a file changes the output.
_SHARED: dict[str, list[str]] = _load("shared")
# {"slots": {slot: words}, "templates": [...]} per emotion, and "unclear" (the same for every label).
_TABLES: dict[str, dict] = {name: _load(name) for name in (*EMOTIONS, "unclear")}


def make_sentence(label: str, rng: np.random.Generator, clear: bool = True) -> str:
    """A sentence that expresses `label`, or, when not `clear`, one that gives no hint of any emotion."""
    if label not in EMOTIONS:
        raise ValueError(f"Unknown emotion {label!r}; use one of {', '.join(EMOTIONS)}.")
    table = _TABLES[label if clear else "unclear"]
    slots = {slot: pick(rng, words) for slot, words in (_SHARED | table["slots"]).items()}
    template = pick(rng, table["templates"])
    text = " ".join(template.format(**slots).split())  # an empty intensifier leaves a double space
    text = text.replace(" ,", ",").replace(" .", ".").replace(" !", "!")
    text = text[0].upper() + text[1:]
    style = rng.random()
    if style < 0.08:  # casual typing
        text = text.lower()
    elif style < 0.14:
        text = text.rstrip(".!")
    return text
