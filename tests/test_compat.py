"""Model folders saved before encoders carried their preprocessing load and predict exactly as before.

Reference predictions in tests/data were written by the code before that change (see tests/data/README.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fusion.predictor import EmotionPredictor, NoFaceError
from tests.conftest import ASTRONAUT

DATA = Path(__file__).parent / "data"


def reference_inputs() -> list[tuple[str, Image.Image | None, str | None]]:
    """The inputs the references were recorded on: a photo, drawn faces, a 48 px gray crop, noise, text only."""
    from tests.synthetic import draw_face

    items: list[tuple[str, Image.Image | None, str | None]] = [
        ("astronaut.jpg", Image.open(ASTRONAUT), "We made it, this is incredible!")
    ]
    for i, label in enumerate(["angry", "happy", "surprise", "sad"]):
        items.append((f"drawn-{label}-160", draw_face(label, np.random.default_rng([11, i]), size=160), None))
    crop = draw_face("happy", np.random.default_rng([12, 0]), size=96).convert("L").resize((48, 48))
    items.append(("gray-48", crop, "ok"))
    noise = np.random.default_rng(7).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    items.append(("noise-300x200", Image.fromarray(noise), None))
    items.append(("text-only", None, "My dog died this morning and I can't stop crying."))
    return items


def assert_same_predictions(predictor: EmotionPredictor, reference: Path) -> None:
    expected = json.loads(reference.read_text())
    for name, image, text in reference_inputs():
        want = expected[name]
        if want["face_found"] is False and text is None:  # no face, no text: answered then, abstains now
            with pytest.raises(NoFaceError):
                predictor.predict(image=image, text=text)
            continue
        got = predictor.predict(image=image, text=text).to_dict()
        if name == "gray-48":  # a small square image is a face crop whole now (Haar's 42 px box then)
            assert got["face_found"] and got["face_box"] == [0, 0, 48, 48]
            continue
        assert (got["label"], got["face_found"], got["face_box"]) == (
            want["label"],
            want["face_found"],
            want["face_box"],
        )
        for key in ("probabilities", "image_probabilities", "text_probabilities"):
            assert (got[key] is None) == (want[key] is None), (name, key)
            if want[key] is not None:
                assert got[key] == pytest.approx(want[key], abs=1e-6), (name, key)


def test_a_folder_saved_before_encoders_carried_their_preprocessing_predicts_the_same(tmp_path, tokenizer):
    """tests/data/legacy_model: mini-Xception (fer's weights) + a tiny BERT, saved with 224 px RGB ImageNet input."""
    folder = tmp_path / "legacy"
    shutil.copytree(DATA / "legacy_model", folder)
    tokenizer.save_pretrained(folder)  # the packaged MiniLM tokenizer, unchanged
    predictor = EmotionPredictor.load(folder)
    assert predictor.model.image.convert_from is not None  # the tower converts the old input to its own
    assert_same_predictions(predictor, DATA / "legacy_model_predictions.json")
