"""Serving: raw image and/or text in, probabilities over the 7 emotions out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from fusion.doubt import doubt as say_doubt
from fusion.faces import MAX_FACES, FaceCrop
from fusion.hub import load_model_folder, resolve_model_source
from fusion.model import EmotionFusionModel
from fusion.preprocess import ImageInput, InvalidImageError, Preprocessor

MAX_BATCH = 32


class NoInputError(ValueError):
    """Neither an image nor a non-blank text was given."""


class NoFaceError(ValueError):
    """An image with no face and no text: there is nothing to answer from."""


class FaceChoiceError(ValueError):
    """A face number that the image does not have."""


NO_INPUT_MESSAGE = "Nothing to analyse: give a face image, a text, or both."
NO_FACE_MESSAGE = (
    "No face was found in the image. Try a photo where the face is large, frontal and well lit "
    "(or crop the image to the face), or add a text."
)
NO_FACE_NOTE = "No face found in the image: the answer is the text's alone."


@dataclass
class FaceResult:
    """One detected face: its square box and what the face alone says."""

    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the upright image
    probabilities: dict[str, float]
    fused: bool  # the face whose emotion was fused with the text

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "probabilities": self.probabilities, "fused": self.fused}


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]
    text_probabilities: dict[str, float] | None
    image_probabilities: dict[str, float] | None  # the fused face's own
    face_found: bool | None  # None when no image was given
    face_box: tuple[int, int, int, int] | None  # (x0, y0, x1, y1) of the fused face's crop
    faces: list[FaceResult] = field(default_factory=list)  # every face scored, largest first
    note: str | None = None  # what a person should know about this answer (no face, several faces, doubt)
    face_crop: Image.Image | None = field(default=None, repr=False)
    doubt: str | None = None  # face and text disagree, or the top two are too close to call (`fusion.doubt`)
    detector: str | None = None  # what looked for faces: "yunet" or "haar" (the fallback); None without an image

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the crop image is left out)."""
        return {
            "label": self.label,
            "probabilities": self.probabilities,
            "text_probabilities": self.text_probabilities,
            "image_probabilities": self.image_probabilities,
            "face_found": self.face_found,
            "face_box": list(self.face_box) if self.face_box else None,
            "faces": [face.to_dict() for face in self.faces],
            "note": self.note,
            "doubt": self.doubt,
            "detector": self.detector,
        }


@dataclass
class PreparedRequest:
    """One request after validation: its faces (largest first; [] when none or no image), which one
    is fused with the text, and the text."""

    faces: list[FaceCrop]
    fused: int
    text: str | None
    image_given: bool
    ignored: str | None = None  # a modality the model has no tower for ("text" or "image")

    @property
    def rows(self) -> list[tuple[FaceCrop | None, str | None]]:
        """Model rows: each face alone, the fused one with the text (or the text alone)."""
        if not self.faces:
            return [(None, self.text)]
        return [(face, self.text if i == self.fused else None) for i, face in enumerate(self.faces)]


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
        cls,
        source: str | Path,
        revision: str | None = None,
        device: str | None = None,
        token: str | None = None,
        quantize: str = "none",
    ) -> EmotionPredictor:
        """From a local model folder, or a Hub repo id at `revision` (branch, tag or commit).

        `quantize="int8"` serves the face CNN in int8 on the CPU (`fusion.quantize`); the text stays fp32.
        """
        from fusion import quantize as q

        if quantize not in q.MODES:
            raise ValueError(f"Unknown quantize mode {quantize!r}; use one of {q.MODES}.")
        device = "cpu" if quantize == "int8" else device or ("cuda" if torch.cuda.is_available() else "cpu")
        folder = resolve_model_source(source, revision=revision, token=token)
        model, tokenizer = load_model_folder(folder, device=device)
        if quantize == "int8":
            model = q.quantize_model(model, q.read_calibration(folder))
        return cls(model, tokenizer, source=str(source), revision=revision)

    def warm_up(self) -> None:
        """One throw-away prediction of each kind, so the first user does not pay for lazy initialisation."""
        face = Image.new("RGB", (96, 96), (128, 128, 128))  # small and square: taken as a face crop
        self.predict_batch([(face, "warming up"), (face, None), (None, "warming up")])

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    def predict(self, image: ImageInput | None = None, text: str | None = None, face: int | None = None) -> Prediction:
        """Predict from an image, a text, or both. Every face is scored; face number `face` (1 = the
        largest, the default) is fused with the text. Raises `NoInputError` / `NoFaceError` /
        `InvalidImageError` (all `ValueError`s)."""
        result = self.predict_batch([{"image": image, "text": text, "face": face}], return_errors=True)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def predict_batch(
        self,
        items: Sequence[tuple[ImageInput | None, str | None] | dict[str, Any]],
        return_errors: bool = False,
        max_faces: int = MAX_FACES,
    ) -> list[Prediction | ValueError]:
        """Predict many (image, text) pairs in batches of up to `MAX_BATCH`.

        With `return_errors`, a bad item yields its `ValueError` in place and the others are
        still predicted (one user's broken upload must not fail a whole server batch).
        `max_faces=1` scores only the largest face (a video frame, a live frame).
        """
        results: list[Prediction | ValueError | None] = [None] * len(items)
        valid: list[PreparedRequest] = []
        at: list[int] = []  # the item each prepared request came from
        for i, item in enumerate(items):
            try:
                valid.append(self.prepare(*_as_request(item), max_faces=max_faces))
                at.append(i)
            except (NoInputError, NoFaceError, FaceChoiceError, InvalidImageError) as err:
                if not return_errors:
                    raise
                results[i] = err
        for i, prediction in zip(at, self.predict_prepared(valid), strict=True):
            results[i] = prediction
        return results  # type: ignore[return-value]

    def predict_prepared(self, items: list[PreparedRequest]) -> list[Prediction]:
        """The model step for prepared requests, in chunks of at most `MAX_BATCH` rows (a row per face)."""
        predictions: list[Prediction] = []
        chunk: list[PreparedRequest] = []
        for item in [*items, None]:
            if chunk and (item is None or sum(len(c.rows) for c in chunk) + len(item.rows) > MAX_BATCH):
                predictions += self._predict_prepared(chunk)
                chunk = []
            if item is not None:
                chunk.append(item)
        return predictions

    def prepare(
        self,
        image: ImageInput | None = None,
        text: str | None = None,
        face: int | None = None,
        max_faces: int = MAX_FACES,
    ) -> PreparedRequest:
        """The request's input checks, decoding and face detection: the part of `predict` a server can run in
        each caller's thread, before batching the model step (`predict_prepared`). Raises like `predict`."""
        if text is not None and not isinstance(text, str):
            raise NoInputError(f"The text must be a string, not {type(text).__name__}.")
        text = text if text and text.strip() else None
        if image is None and text is None:
            raise NoInputError(NO_INPUT_MESSAGE)
        ignored = None
        for modality, given in (("text", text is not None), ("image", image is not None)):
            if given and not self.model.has(modality):
                if (text is None) if modality == "image" else (image is None):
                    reads = "texts" if modality == "image" else "faces"
                    raise NoInputError(
                        f"This model reads {reads} only; send {'a text' if reads == 'texts' else 'an image'}."
                    )
                ignored = modality
        text = None if ignored == "text" else text
        image = None if ignored == "image" else image
        faces = self.preprocessor.faces(image, max_faces) if image is not None else []
        if image is not None and not faces and text is None:
            raise NoFaceError(NO_FACE_MESSAGE)
        fused = 0 if face is None else int(face) - 1
        if faces and not 0 <= fused < len(faces):
            raise FaceChoiceError(
                f"Face {face} was asked for, but {len(faces)} face(s) were found: pick 1 to {len(faces)}."
            )
        return PreparedRequest(faces, fused, text, image_given=image is not None, ignored=ignored)

    @torch.inference_mode()
    def _predict_prepared(self, chunk: list[PreparedRequest]) -> list[Prediction]:
        rows = [row for item in chunk for row in item.rows]
        images = [self.preprocessor.image_tensor(face) if face else None for face, _ in rows]
        batch = self.preprocessor.collate(images, [text for _, text in rows])
        batch = {k: v.to(self.device) if v is not None else None for k, v in batch.items()}
        out = self.model(**batch)
        temperature = float(self.model.temperature)
        fused = torch.softmax(out.logits.float() / temperature, dim=-1).cpu()
        text_p = torch.softmax(out.text_logits.float() / temperature, dim=-1).cpu()
        image_p = torch.softmax(out.image_logits.float() / temperature, dim=-1).cpu()
        predictions, start = [], 0
        for item in chunk:
            row = start + (item.fused if item.faces else 0)  # the row that holds the text
            face = item.faces[item.fused] if item.faces else None
            probs = self._as_dict(fused[row])
            text_probs = self._as_dict(text_p[row]) if item.text else None
            image_probs = self._as_dict(image_p[row]) if face else None
            doubt = say_doubt(probs, image_probs, text_probs)
            predictions.append(
                Prediction(
                    label=max(probs, key=probs.get),
                    probabilities=probs,
                    text_probabilities=text_probs,
                    image_probabilities=image_probs,
                    face_found=bool(item.faces) if item.image_given else None,
                    face_box=face.box if face else None,
                    faces=[
                        FaceResult(f.box, self._as_dict(image_p[start + i]), fused=i == item.fused)
                        for i, f in enumerate(item.faces)
                    ],
                    note=" ".join(n for n in (_note(item), doubt) if n) or None,
                    face_crop=face.image if face else None,
                    doubt=doubt,
                    detector=self.preprocessor.detector if item.image_given else None,
                )
            )
            start += len(item.rows)
        return predictions

    def _as_dict(self, probs: torch.Tensor) -> dict[str, float]:
        return {label: float(p) for label, p in zip(self.labels, probs.tolist(), strict=False)}


def _note(item: PreparedRequest) -> str | None:
    if item.ignored:
        return f"This model has no {item.ignored} branch: the {item.ignored} was not used."
    if item.image_given and not item.faces:
        return NO_FACE_NOTE
    total = item.faces[0].faces if item.faces else 0
    if total > 1:
        which = "the largest" if item.fused == 0 else f"face {item.fused + 1}"
        scored = f"the {len(item.faces)} largest were scored" if total > len(item.faces) else "each was scored"
        return f"{total} faces found ({scored}); {which} was fused with the text (the crop shown)."
    return None


def _as_request(item: tuple[Any, ...] | dict[str, Any]) -> tuple[Any, Any, int | None]:
    """(image, text, face number to fuse) from a tuple (image, text[, face]) or a dict."""
    if isinstance(item, dict):
        unknown = set(item) - {"image", "text", "face"}
        if unknown:
            raise ValueError(f"Unknown keys {sorted(unknown)} in a batch item; use 'image', 'text' and 'face'.")
        return item.get("image"), item.get("text"), item.get("face")
    image, text, *face = item
    return image, text, face[0] if face else None
