"""Writing model folders and publishing them: the only place a model folder's files are written or pushed.

A folder is `config.json` (the model's config, preprocessing included), `model.safetensors` and the
tokenizer; the training report adds metrics and the card (`train.report`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from fusion.hub import CONFIG_FILE, NESTED, SERVE_PATTERNS, WEIGHTS_FILE, check_model_folder, explain_hub_errors
from fusion.model import LEFT_OUT, EmotionFusionModel

TOWERS = ("text.", "image.")


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

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
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


def push_model_folder(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
) -> str:
    """Upload a checked model folder (serving files only) in one commit; returns the commit URL.

    The repo is created if missing. A commit is atomic on the Hub, so a failed push leaves the
    previous revision intact; transient 5xx answers are retried.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    check_model_folder(folder)
    api = HfApi(token=token)
    message = commit_message or _commit_message(folder)
    with explain_hub_errors("push to", repo_id):
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = _retry(
            lambda: api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                allow_patterns=SERVE_PATTERNS,
                ignore_patterns=NESTED,
                commit_message=message,
                revision=revision,
            )
        )
    return str(info.commit_url)


def _commit_message(folder: Path) -> str:
    """ "Upload model (test accuracy 81.2%, macro-F1 79.9%)" when metrics.json has them (the first evaluation)."""
    try:
        first = json.loads((folder / "metrics.json").read_text())["evaluations"][0]
        split, accuracy, f1 = first["split"], 100 * first["accuracy"], 100 * first["macro_f1"]
        return f"Upload model ({split} accuracy {accuracy:.1f}%, macro-F1 {f1:.1f}%)"
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return "Upload model"


def _retry(call, attempts: int = 3, wait: float = 1.0):
    from huggingface_hub.errors import HfHubHTTPError

    for attempt in range(attempts):
        try:
            return call()
        except HfHubHTTPError as err:
            status = err.response.status_code if err.response is not None else 0
            if status < 500 or attempt == attempts - 1:
                raise
            time.sleep(wait * 2**attempt)
    raise AssertionError("unreachable")
