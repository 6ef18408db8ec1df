"""Writing a model folder: the one writer behind `EmotionFusionModel.save_pretrained`, `push_to_hub` and training.

A folder is `config.json` (the model's config, preprocessing included), `model.safetensors` and the
tokenizer: everything `EmotionPredictor.load` needs. The training report adds metrics and the card
(`train.report`); publishing a folder is `train.export.push_model_folder`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fusion.hub import CONFIG_FILE, WEIGHTS_FILE
from fusion.model import LEFT_OUT

if TYPE_CHECKING:
    from fusion.model import EmotionFusionModel

TOWERS = ("text.", "image.")
NO_TOKENIZER = (
    "This model has no tokenizer to save with it, and a folder without one cannot be loaded: pass "
    "`tokenizer=` (the one it was trained with), or load the model with `fusion.hub.load_model_folder` or "
    "build it with `create_model`, which keep theirs."
)


def save_model_folder(
    model: EmotionFusionModel, tokenizer: Any, folder: str | Path, half: bool = False, leave_out_base: bool = False
) -> Path:
    """Write config, safetensors weights and tokenizer into `folder` (created if missing).

    `half` stores the encoder towers in fp16 (heads and norms stay fp32: they are small, and the
    served probabilities stay what they were to ~1e-6). `leave_out_base` leaves out text-encoder
    tensors equal to those of the encoder's registered base (the packaged word embeddings when they
    were frozen): `load_weights` takes them from there again.
    """
    from safetensors.torch import save_file

    if tokenizer is None:
        raise ValueError(NO_TOKENIZER)
    state = model.state_dict()
    if any(not isinstance(v, torch.Tensor) or v.is_quantized for v in state.values()):
        raise ValueError(
            "This is an int8 serving copy (derived at load time, `quantize='int8'`): save the fp32 model it was "
            "made from instead; loading that folder with `quantize='int8'` derives the same int8 model again."
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    left_out = unchanged_base_tensors(model, state) if leave_out_base else []
    for key in left_out:
        del state[key]
    if half:
        state = {k: v.half() if v.is_floating_point() and k.startswith(TOWERS) else v for k, v in state.items()}
    save_file(state, str(folder / WEIGHTS_FILE), {"format": "pt", LEFT_OUT: json.dumps(left_out)})
    (folder / CONFIG_FILE).write_text(json.dumps(model.config, indent=2, sort_keys=True) + "\n")
    tokenizer.save_pretrained(folder)
    return folder


def unchanged_base_tensors(model: EmotionFusionModel, state: dict[str, torch.Tensor]) -> list[str]:
    """Text-encoder keys whose tensors equal the registered base encoder's (nothing without a base)."""
    from fusion.encoders import base_text_weights

    if model.text is None or not model.text.base:
        return []
    prefix = "text.model."
    keys = [k for k in state if k.startswith(prefix) and state[k].is_floating_point()]
    base = base_text_weights(model.text.base, [k[len(prefix) :] for k in keys if "embeddings" in k])
    return [prefix + k for k, v in base.items() if torch.equal(v, state[prefix + k].float())]
