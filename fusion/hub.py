"""Model folders: save locally, resolve a local folder or Hub repo id, load safely.

A model folder holds `config.json` (model + preprocessing config), `model.safetensors` and the
tokenizer files. Pickled weights are never loaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fusion.model import EmotionFusionModel
from fusion.preprocess import load_tokenizer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# What a served model needs; everything else in a repo (checkpoints, logs) is not downloaded.
SERVE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "README.md", "*.png"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelSourceError(ValueError):
    """A model source that is neither a usable folder nor a reachable Hub repo."""


def save_model_folder(model: EmotionFusionModel, tokenizer: Any, folder: str | Path) -> Path:
    """Write config, safetensors weights and tokenizer into `folder` (created if missing)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def resolve_model_source(source: str | Path, revision: str | None = None, token: str | None = None) -> Path:
    """A local folder as is; a Hub repo id downloaded (cached) at `revision`."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    text = str(source)
    if path.exists() or text.startswith((".", "/", "~")) or not _REPO_ID.match(text):
        raise ModelSourceError(f"Model source {text!r} is not a model folder or a Hub repo id (user/name).")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(snapshot_download(text, revision=revision, allow_patterns=SERVE_PATTERNS, token=token))
    except RepositoryNotFoundError:
        raise ModelSourceError(f"Model repo {text!r} was not found on the Hub, or your token cannot read it.") from None
    except RevisionNotFoundError:
        raise ModelSourceError(f"Model repo {text!r} has no revision {revision!r}.") from None
    except LocalEntryNotFoundError:
        raise ModelSourceError(
            f"Model repo {text!r} is not in the local cache and the Hub cannot be reached (offline?)."
        ) from None
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else "?"
        raise ModelSourceError(f"The Hub answered {status} while downloading {text!r}; try again later.") from None


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
    model = EmotionFusionModel.from_pretrained(folder, map_location=device)
    return model.to(device).eval(), load_tokenizer(folder)
