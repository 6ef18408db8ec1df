"""Model folders: resolve a local folder or Hub repo id, and load it safely (`fusion.save` writes them).

A model folder holds `config.json` (model + preprocessing config), `model.safetensors` and the
tokenizer files. Pickled weights are never loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fusion.encoders import DEFAULT_MODEL
from fusion.model import EmotionFusionModel

__all__ = ["DEFAULT_MODEL", "ModelSourceError", "load_model_folder", "resolve_model_source"]
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# What a served model needs; everything else in a repo (checkpoints, logs) is not downloaded.
SERVE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "README.md", "*.png"]
NESTED = ["*/*"]  # a model folder is flat; sub-folders hold training checkpoints, never served
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelSourceError(ValueError):
    """A model source that is neither a usable folder nor a reachable Hub repo."""


@contextmanager
def explain_hub_errors(what: str, repo_id: str, revision: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub errors into `ModelSourceError`s that say what to fix (never echoing a token)."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except RevisionNotFoundError:
        raise ModelSourceError(f"Repo {repo_id!r} has no revision {revision!r}.") from None
    except RepositoryNotFoundError:
        raise ModelSourceError(
            f"Repo {repo_id!r} was not found on the Hub, or your token cannot read it (private repos need HF_TOKEN)."
        ) from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        raise ModelSourceError(
            f"Repo {repo_id!r} is not in the local cache and the Hub cannot be reached (offline?)."
        ) from None
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status == 401:
            hint = "the Hub rejected the token: set HF_TOKEN to a valid token (or run `hf auth login`)"
        elif status == 403:
            hint = "the token may not write here: use a token with write access to this namespace"
        elif status is not None and status >= 500:
            hint = f"the Hub answered {status}; nothing was changed, try again later"
        else:
            hint = f"the Hub answered {status}"
        raise ModelSourceError(f"Could not {what} {repo_id!r}: {hint}.") from None


def resolve_model_source(source: str | Path, revision: str | None = None, token: str | None = None) -> Path:
    """A local folder as is; a Hub repo id downloaded (cached) at `revision`."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    text = str(source)
    if path.exists() or text.startswith((".", "/", "~")) or not _REPO_ID.match(text):
        raise ModelSourceError(f"Model source {text!r} is not a model folder or a Hub repo id (user/name).")
    from huggingface_hub import snapshot_download

    with explain_hub_errors("download", text, revision):
        return Path(
            snapshot_download(
                text, revision=revision, allow_patterns=SERVE_PATTERNS, ignore_patterns=NESTED, token=token
            )
        )


def check_model_folder(folder: Path) -> None:
    """Refuse folders without config or safetensors weights, naming what is missing."""
    if not (folder / CONFIG_FILE).is_file():
        raise ModelSourceError(f"{folder} has no {CONFIG_FILE}; it is not an emotion-fusion model folder.")
    if not (folder / WEIGHTS_FILE).is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        hint = (
            f" It holds pickled weights ({', '.join(pickles)}), which are never loaded because unpickling "
            "can run arbitrary code; convert them to safetensors."
            if pickles
            else ""
        )
        raise ModelSourceError(f"{folder} has no {WEIGHTS_FILE}.{hint}")


def load_model_folder(folder: str | Path, device: str = "cpu") -> tuple[EmotionFusionModel, Any]:
    """Model (eval mode) and tokenizer from a checked local folder."""
    folder = Path(folder)
    check_model_folder(folder)
    try:
        model = EmotionFusionModel.from_pretrained(folder, map_location=device)
    except (TypeError, ValueError) as err:  # a config from another library, or weights that do not fit it
        raise ModelSourceError(f"{folder} is not a usable emotion-fusion model folder: {err}") from None
    if model.tokenizer is None:
        raise ModelSourceError(
            f"{folder} has no tokenizer (tokenizer_config.json): save the model again with "
            "`save_pretrained(folder, tokenizer=...)`, which writes a complete folder."
        )
    return model.to(device).eval(), model.tokenizer
