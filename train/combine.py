"""Two trained branches -> one model: the text branch of one folder and the image branch of another, fused by
adding their calibrated logits (log-linear pooling; `fusion="logits"`).

Each branch keeps its tower, its normalisation and its head; its temperature (fitted on its own
validation/dev data) is folded into its head, so the fused answer is the product of the two calibrated
branches and a missing modality leaves the other branch's answer as it was. This is how the offline
default is made from its text and face training runs (`train.default_assets`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fusion.hub import load_model_folder, resolve_model_source
from fusion.model import EmotionFusionModel

BRANCH_PARTS = {"text": ("text.", "text_embed.", "text_head."), "image": ("image.", "image_embed.", "image_head.")}


def combine(text_source: str | Path, image_source: str | Path) -> tuple[EmotionFusionModel, Any]:
    """(model, tokenizer): the text branch of `text_source` and the image branch of `image_source`."""
    text_model, tokenizer = load_model_folder(resolve_model_source(text_source))
    image_model, _ = load_model_folder(resolve_model_source(image_source))
    for modality, model, source in (("text", text_model, text_source), ("image", image_model, image_source)):
        if not model.has(modality):
            raise ValueError(f"{source} has no {modality} branch to take.")
    if text_model.labels != image_model.labels:
        raise ValueError(f"The branches' labels differ: {text_model.labels} vs {image_model.labels}.")
    text_encoder = dict(text_model.config["text_encoder"])
    model = EmotionFusionModel(
        text_encoder=text_encoder,
        image_encoder=dict(image_model.config["image_encoder"]),
        fusion="logits",
        fusion_hidden=[],
        dropout=0.0,
        num_labels=len(text_model.labels),
        labels=list(text_model.labels),
        freeze_text=True,
        freeze_image=True,
        preprocess={
            **image_model.preprocess_cfg.to_dict(),
            "max_text_tokens": text_model.preprocess_cfg.max_text_tokens,
            "text_ngrams": text_model.preprocess_cfg.text_ngrams,
        },
        text_norm=text_model.config.get("text_norm", True),
        image_norm=image_model.config.get("image_norm", True),
        text_routes=text_model.config.get("text_routes", 1),
    )
    state = model.state_dict()
    for modality, branch in (("text", text_model), ("image", image_model)):
        taken = branch_state(branch, modality)
        state.update(taken)
    model.load_state_dict(state, strict=True)
    return model.eval(), tokenizer


@torch.no_grad()
def branch_state(model: EmotionFusionModel, modality: str) -> dict[str, torch.Tensor]:
    """One branch's tensors, its head (each route's, when routed) divided by the model's temperature (what its predictor served)."""
    temperature = float(model.temperature)
    state = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(BRANCH_PARTS[modality])}
    head = f"{modality}_head.heads." if f"{modality}_head.heads.weight" in state else f"{modality}_head."
    for key in (f"{head}weight", f"{head}bias"):  # a routed head's router is not divided: its weights are shares
        state[key] = state[key] / temperature
    return state
