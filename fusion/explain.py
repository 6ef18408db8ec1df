"""Why the model said it: occlusion over words and over the face, through the served preprocessing.

Occlusion asks the model itself: a word's score is how much the answer's probability drops when the
word is left out; a face region's score is how much it drops when that patch is grey. No gradients,
so it works for any encoder, and every variant goes through the same `Preprocessor` as a prediction.
Each explanation is one batched forward pass (one row per word, or per patch); the face's variants are
scored with one view each (no test-time augmentation), the unoccluded face included, so the heat-map
costs one pass over ~65 small crops instead of ten.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from PIL import Image

from fusion.predictor import EmotionPredictor

PATCH = 0.2  # occluding square, as a share of the face crop side
STRIDE = 0.1
MAX_WORDS = 64  # longer texts: the first 64 words are explained


def words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


@torch.inference_mode()
def explain_text(predictor: EmotionPredictor, text: str, label: str | None = None) -> list[tuple[str, float]]:
    """[(word, score)]: the drop in `label`'s text-only probability when the word is left out (may be < 0)."""
    tokens = words(text)[:MAX_WORDS]
    if not tokens:
        raise ValueError("Nothing to explain: the text is empty.")
    variants = [" ".join(tokens)] + [" ".join(tokens[:i] + tokens[i + 1 :]) for i in range(len(tokens))]
    probs = _text_probabilities(predictor, variants)
    target = predictor.labels.index(label) if label else int(probs[0].argmax())
    drops = probs[0, target] - probs[1:, target]
    return [(word, round(float(d), 4)) for word, d in zip(tokens, drops, strict=True)]


def _text_probabilities(predictor: EmotionPredictor, texts: list[str]) -> torch.Tensor:
    batch = {k: v.to(predictor.device) for k, v in predictor.preprocessor.tokenize(texts).items()}
    present = torch.tensor([bool(t.strip()) for t in texts], device=predictor.device)
    out = predictor.model(**batch, text_present=present)
    return torch.softmax(out.text_logits.float() / float(predictor.model.temperature), dim=-1).cpu()


@torch.inference_mode()
def explain_face(predictor: EmotionPredictor, crop: Image.Image, label: str | None = None) -> tuple[np.ndarray, str]:
    """(heat-map over the face crop in [0, 1] at the model's input size, the emotion explained)."""
    x = predictor.preprocessor.transform(crop.convert("RGB"))
    size = x.shape[-1]
    patch, stride = max(2, round(PATCH * size)), max(1, round(STRIDE * size))
    corners = [(top, left) for top in range(0, size - patch + 1, stride) for left in range(0, size - patch + 1, stride)]
    variants = x.unsqueeze(0).repeat(len(corners) + 1, 1, 1, 1)
    for i, (top, left) in enumerate(corners, start=1):
        variants[i, :, top : top + patch, left : left + patch] = 0.0  # 0 = the normalised mean grey
    logits = predictor.model.image_branch_logits(variants.to(predictor.device), tta="none")
    probs = torch.softmax(logits.float() / float(predictor.model.temperature), dim=-1).cpu()
    target = predictor.labels.index(label) if label else int(probs[0].argmax())
    heat, hits = np.zeros((size, size)), np.zeros((size, size))
    for drop, (top, left) in zip((probs[0, target] - probs[1:, target]).numpy(), corners, strict=True):
        heat[top : top + patch, left : left + patch] += max(float(drop), 0.0)
        hits[top : top + patch, left : left + patch] += 1
    heat = heat / np.maximum(hits, 1)
    return heat / heat.max() if heat.max() > 0 else heat, predictor.labels[target]


def overlay(crop: Image.Image, heat: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """The crop with the heat-map laid over it in red (brighter = mattered more)."""
    base = crop.convert("RGB")
    mask = Image.fromarray((heat * 255).astype(np.uint8)).resize(base.size, Image.Resampling.BILINEAR)
    red = Image.new("RGB", base.size, (255, 0, 0))
    return Image.composite(red, base, mask.point(lambda v: int(v * alpha)))
