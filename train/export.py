"""Publishing a trained model folder (`--push-to-hub`): checked, serving files only, one commit, retried.

A folder is written by `fusion.save.save_model_folder` (also behind `EmotionFusionModel.save_pretrained`;
re-exported here for the trainer): `config.json` (the model's config, preprocessing included),
`model.safetensors` and the tokenizer; the training report adds metrics and the card (`train.report`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fusion.hub import NESTED, SERVE_PATTERNS, check_model_folder, explain_hub_errors
from fusion.save import save_model_folder

__all__ = ["push_model_folder", "save_model_folder"]


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
