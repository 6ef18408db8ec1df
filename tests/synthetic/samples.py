"""The rows of a dataset: which label and which clear modalities each gets, and the sample drawn for it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from fusion.labels import EMOTIONS
from tests.synthetic.common import pick
from tests.synthetic.faces import OCCLUSIONS, draw_face
from tests.synthetic.text import make_sentence

CLEAR_INTENSITY = (0.6, 1.0)
UNCLEAR_INTENSITY = (0.0, 0.08)


@dataclass(frozen=True)
class Sample:
    """One generated row."""

    image: Image.Image
    text: str
    label: str
    face_clear: bool
    text_clear: bool


def plan(n: int, seed: int, ambiguous_face: float, ambiguous_text: float) -> list[tuple[str, bool, bool]]:
    """(label, face_clear, text_clear) per row: balanced labels, exact ambiguity shares spread over labels.

    A row has an unclear face or an uninformative sentence, never both: each modality alone tops out
    below 100% while the pair determines the label.
    """
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
    """Row `index` of a dataset; it depends only on its arguments, never on other rows.

    Face and sentence come from generators seeded by (seed, index), so the same arguments give the
    same sample whatever the generation order. An unclear face has a near-zero expression and is
    sometimes occluded or blurred.
    """
    face_rng = np.random.default_rng([seed, 1, index])
    text_rng = np.random.default_rng([seed, 2, index])
    if face_clear:
        image = draw_face(label, face_rng, size, face_rng.uniform(*CLEAR_INTENSITY))
    else:
        intensity = face_rng.uniform(*UNCLEAR_INTENSITY)
        occlusion = pick(face_rng, (None, None, *OCCLUSIONS))
        image = draw_face(label, face_rng, size, intensity, occlusion)
    return Sample(image, make_sentence(label, text_rng, clear=text_clear), label, face_clear, text_clear)
