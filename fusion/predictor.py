"""Serving: raw image and/or text in, probabilities over the 7 emotions out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from fusion.faces import FaceCrop
from fusion.hub import load_model_folder, resolve_model_source
from fusion.model import EmotionFusionModel
from fusion.preprocess import ImageInput, InvalidImageError, Preprocessor

MAX_BATCH = 32


class NoInputError(ValueError):
    """Neither an image nor a non-blank text was given."""


class NoFaceError(ValueError):
    """An image with no face and no text: there is nothing to answer from."""


NO_INPUT_MESSAGE = "Nothing to analyse: give a face image, a text, or both."
NO_FACE_MESSAGE = (
    "No face was found in the image. Try a photo where the face is large, frontal and well lit "
    "(or crop the image to the face), or add a text."
)
NO_FACE_NOTE = "No face found in the image: the answer is the text's alone."


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]
    text_probabilities: dict[str, float] | None
    image_probabilities: dict[str, float] | None
    face_found: bool | None  # None when no image was given
    face_box: tuple[int, int, int, int] | None  # (x0, y0, x1, y1) of the crop the model saw
    faces: int = 0  # faces detected in the image; the largest was scored
    note: str | None = None  # what a person should know about this answer (no face, several faces)
    face_crop: Image.Image | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the crop image is left out)."""
        return {
            "label": self.label,
            "probabilities": self.probabilities,
            "text_probabilities": self.text_probabilities,
            "image_probabilities": self.image_probabilities,
            "face_found": self.face_found,
            "face_box": list(self.face_box) if self.face_box else None,
            "faces": self.faces,
            "note": self.note,
        }


@dataclass
class _Item:
    """One request after validation: the face to score (None: no image, or none found) and the text."""

    index: int
    face: FaceCrop | None
    text: str | None
    image_given: bool


class EmotionPredictor:
    """Loads once, predicts many times; the model is kept in eval mode under `inference_mode`.

    An image in which no face is found is not scored (a face model's answer on a landscape is noise):
    with a text, the text's answer is served with a note; alone, it is a `NoFaceError`.
    """

    def __init__(self, model: EmotionFusionModel, tokenizer: Any, source: str = "", revision: str | None = None):
        self.model = model.eval()
        self.preprocessor = Preprocessor(model.preprocess_cfg, tokenizer, is_train=False)
        self.source, self.revision = source, revision
        self.device = next(model.parameters()).device

    @classmethod
    def load(
        cls, source: str | Path, revision: str | None = None, device: str | None = None, token: str | None = None
    ) -> EmotionPredictor:
        """From a local model folder, or a Hub repo id at `revision` (branch, tag or commit)."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        folder = resolve_model_source(source, revision=revision, token=token)
        model, tokenizer = load_model_folder(folder, device=device)
        return cls(model, tokenizer, source=str(source), revision=revision)

    def warm_up(self) -> None:
        """One throw-away prediction of each kind, so the first user does not pay for lazy initialisation."""
        face = Image.new("RGB", (96, 96), (128, 128, 128))  # small and square: taken as a face crop
        self.predict_batch([(face, "warming up"), (face, None), (None, "warming up")])

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    def predict(self, image: ImageInput | None = None, text: str | None = None) -> Prediction:
        """Predict from an image, a text, or both. Raises `NoInputError` / `NoFaceError` / `InvalidImageError`."""
        result = self.predict_batch([(image, text)], return_errors=True)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def predict_batch(
        self, items: Sequence[tuple[ImageInput | None, str | None] | dict[str, Any]], return_errors: bool = False
    ) -> list[Prediction | ValueError]:
        """Predict many (image, text) pairs in batches of up to `MAX_BATCH`.

        With `return_errors`, a bad item yields its `ValueError` in place and the others are
        still predicted (one user's broken upload must not fail a whole server batch).
        """
        pairs = [_as_pair(item) for item in items]
        results: list[Prediction | ValueError | None] = [None] * len(pairs)
        valid: list[_Item] = []
        for i, (image, text) in enumerate(pairs):
            try:
                valid.append(self._prepare(i, image, text))
            except (NoInputError, NoFaceError, InvalidImageError) as err:
                if not return_errors:
                    raise
                results[i] = err
        for start in range(0, len(valid), MAX_BATCH):
            chunk = valid[start : start + MAX_BATCH]
            for item, prediction in zip(chunk, self._predict_prepared(chunk), strict=True):
                results[item.index] = prediction
        return results  # type: ignore[return-value]

    def _prepare(self, index: int, image: ImageInput | None, text: str | None) -> _Item:
        if text is not None and not isinstance(text, str):
            raise NoInputError(f"The text must be a string, not {type(text).__name__}.")
        text = text if text and text.strip() else None
        if image is None and text is None:
            raise NoInputError(NO_INPUT_MESSAGE)
        face = self.preprocessor.face(image) if image is not None else None
        if face is not None and not face.face_found:
            if text is None:
                raise NoFaceError(NO_FACE_MESSAGE)
            face = None
        return _Item(index, face, text, image_given=image is not None)

    @torch.inference_mode()
    def _predict_prepared(self, chunk: list[_Item]) -> list[Prediction]:
        images = [self.preprocessor.image_tensor(item.face) if item.face else None for item in chunk]
        batch = self.preprocessor.collate(images, [item.text for item in chunk])
        batch = {k: v.to(self.device) if v is not None else None for k, v in batch.items()}
        out = self.model(**batch)
        temperature = float(self.model.temperature)
        fused = torch.softmax(out.logits.float() / temperature, dim=-1).cpu()
        text_p = torch.softmax(out.text_logits.float() / temperature, dim=-1).cpu()
        image_p = torch.softmax(out.image_logits.float() / temperature, dim=-1).cpu()
        predictions = []
        for row, item in enumerate(chunk):
            probs, face = self._as_dict(fused[row]), item.face
            predictions.append(
                Prediction(
                    label=max(probs, key=probs.get),
                    probabilities=probs,
                    text_probabilities=self._as_dict(text_p[row]) if item.text else None,
                    image_probabilities=self._as_dict(image_p[row]) if face else None,
                    face_found=(face is not None) if item.image_given else None,
                    face_box=face.box if face else None,
                    faces=face.faces if face else 0,
                    note=_note(item),
                    face_crop=face.image if face else None,
                )
            )
        return predictions

    def _as_dict(self, probs: torch.Tensor) -> dict[str, float]:
        return {label: float(p) for label, p in zip(self.labels, probs.tolist(), strict=False)}


def _note(item: _Item) -> str | None:
    if item.image_given and item.face is None:
        return NO_FACE_NOTE
    if item.face is not None and item.face.faces > 1:
        return f"{item.face.faces} faces found: the largest one (the crop shown) was scored."
    return None


def _as_pair(item: tuple[Any, Any] | dict[str, Any]) -> tuple[Any, Any]:
    if isinstance(item, dict):
        unknown = set(item) - {"image", "text"}
        if unknown:
            raise ValueError(f"Unknown keys {sorted(unknown)} in a batch item; use 'image' and 'text'.")
        return item.get("image"), item.get("text")
    image, text = item
    return image, text
