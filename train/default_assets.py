"""Rebuild the offline default's trained assets from real data: one command per branch, then a score.

    python -m train.default_assets face [--data-root ../shared/data | --online] [--run-dir DIR] [--resume]
    python -m train.default_assets text [...same...]
    python -m train.default_assets score [--data-root ../shared/data]

`face` and `text` train through `python -m train` with the recipes below (FER2013 train / GoEmotions
train; epoch selection, temperature, test-time augmentation and the text class-skew adjustment are chosen on
FER2013 validation / GoEmotions dev only), then export what serving needs into fusion/assets/: the
encoder weights in fp16 and the branch's calibrated head. `score` builds the default and scores it
through `EmotionPredictor` on the same validation/dev splits (fusion/assets/default_metrics.json,
read by the model card and the README). With --resume a run continues from its last epoch
checkpoint, so a CPU run can go in chunks; each epoch's CPU time is kept in the run's history.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from fusion.default_model import HEADS, INT8_CALIBRATION, METRICS
from fusion.encoders import PACKAGED_MINILM_GOEMOTIONS, TTA_MODES, image_spec
from fusion.hub import load_model_folder
from fusion.labels import NUM_LABELS
from train.data import load_sources
from train.metrics import choose_logit_adjustment, classification_metrics, fit_temperature
from train.report import write_json

DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
# Copies of the same data on the Hub, for machines without ../shared (the FER2013 one is a community
# parquet copy of the Kaggle release: publicTest = our validation split).
FER_ONLINE = "hub:Aaryan333/fer2013_train_publicTest_privateTest"
GOEMOTIONS_ONLINE = "hub:google-research-datasets/go_emotions:simplified"
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


@dataclass(frozen=True)
class Branch:
    local: tuple[str, ...]  # train and validation sources under --data-root
    online: tuple[str, ...]  # the same splits on the Hub
    recipe: tuple[str, ...]  # `python -m train` arguments


BRANCHES = {
    "face": Branch(
        local=("fer2013",),
        online=(f"{FER_ONLINE}@train", f"{FER_ONLINE}@publicTest"),
        recipe=(
            "--image-encoder", "face_resnet18", "--no-pretrained-image", "--text-encoder", "bert-tiny-random",
            "--epochs", "40", "--batch-size", "64", "--optimizer", "sgd", "--lr-encoder", "0.1", "--lr-head", "0.1",
            "--weight-decay", "5e-4", "--schedule", "cosine", "--warmup-ratio", "0.03", "--label-smoothing", "0.1",
            "--patience", "12", "--seed", "0",
        ),
    ),
    "text": Branch(
        local=("goemotions",),
        online=(f"{GOEMOTIONS_ONLINE}@train", f"{GOEMOTIONS_ONLINE}@validation"),
        recipe=(
            "--text-encoder", "minilm-l6", "--image-encoder", "mini_xception", "--freeze-word-embeddings",
            "--epochs", "3", "--batch-size", "32", "--lr-encoder", "5e-5", "--lr-head", "1e-3",
            "--schedule", "linear", "--warmup-ratio", "0.1", "--group-by-length", "--patience", "2",
        ),
    ),
}  # fmt: skip


def sources(name: str, args: argparse.Namespace) -> list[str]:
    branch = BRANCHES[name]
    return list(branch.online) if args.online else [str(args.data_root / s) for s in branch.local]


def train_branch(name: str, args: argparse.Namespace) -> None:
    """`python -m train` with the branch's recipe; with --resume an interrupted run continues from its last
    epoch (a CPU run can go in chunks)."""
    from train.train import main as train_main

    folder = args.run_dir
    if args.resume and (folder / "model.safetensors").is_file():
        return  # finished already
    argv = [arg for source in sources(name, args) for arg in ("--data", source)]
    argv += [*BRANCHES[name].recipe, "--test-share", "0", "--output-dir", str(folder)]
    argv += ["--mixed-precision", "bf16"] if bf16_is_fast() else []
    argv += ["--resume", "latest"] if args.resume and list(folder.glob("checkpoints/epoch-*")) else []
    argv += ["--epochs", str(args.epochs)] if args.epochs else []  # later flags win: a shorter run
    train_main(argv)


def bf16_is_fast() -> bool:
    """bf16 autocast pays on GPUs and on CPUs with native bf16 (AVX512-BF16, AMX); elsewhere it is emulated."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


# ---------------------------------------------------------------------------------------------
# Export: encoder weights (fp16) and a calibrated head per branch


def branch_logits(model, tokenizer, modality: str, rows) -> tuple[torch.Tensor, torch.Tensor]:
    """One branch's own head logits (uncalibrated) and the labels, through the eval preprocessing."""
    from fusion.preprocess import Preprocessor
    from train.evaluate import collect_logits
    from train.loader import make_loader

    images = modality == "image"
    loader = make_loader(
        rows, Preprocessor(model.preprocess_cfg, tokenizer), 64, use_images=images, use_texts=not images
    )
    return collect_logits(model, loader, desc=f"{modality} logits", output=f"{modality}_logits")


def save_head(key: str, embed, head, temperature: float, bias_shift: torch.Tensor, settings: dict[str, str]) -> None:
    """The branch head with its calibration folded in: (W x + b + shift) / T."""
    tensors = {"head.weight": head.weight / temperature, "head.bias": (head.bias + bias_shift) / temperature}
    if isinstance(embed.norm, torch.nn.LayerNorm):
        tensors |= {"norm.weight": embed.norm.weight, "norm.bias": embed.norm.bias}
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, str(HEADS[key]),
              {"temperature": f"{temperature:.6f}", **settings})  # fmt: skip


def save_encoder(encoder: torch.nn.Module, path: Path, run_dir: Path, leave_out: tuple[str, ...] = ()) -> dict:
    state = {k: v.detach().half().contiguous() for k, v in encoder.state_dict().items() if k not in leave_out}
    save_file(state, str(path), {"run": run_dir.name})
    return {"file": path.name, "megabytes": round(path.stat().st_size / 1e6, 1)}


@torch.no_grad()
def export_face(run_dir: Path, data: dict) -> dict[str, Any]:
    """The face branch: fp16 weights, the head with its temperature and test-time augmentation (both chosen
    on validation), the int8 calibration, and mini-Xception's temperature."""
    model, tokenizer = load_model_folder(run_dir)
    val = data["validation"]
    tried = {}
    for tta in TTA_MODES:
        model.image.tta = tta
        tried[tta] = branch_logits(model, tokenizer, "image", val)
    by_tta = {tta: classification_metrics(*tried[tta], model.labels)["accuracy"] for tta in tried}
    tta = max(TTA_MODES, key=lambda mode: by_tta[mode] - 0.002 * TTA_MODES.index(mode))  # the cheaper on a tie
    temperature = fit_temperature(*tried[tta])
    encoder = model.image.arch
    save_head("face", model.image_embed, model.image_head, temperature, torch.zeros(NUM_LABELS),
              {"tta": tta, "encoder": encoder, "run": run_dir.name})  # fmt: skip
    model.image.tta = "none"
    return {
        "validation_accuracy_by_tta": by_tta,
        "tta": tta,
        "temperature": temperature,
        "weights": save_encoder(model.image.model, image_spec(encoder).weights, run_dir),
        "int8_calibration": export_int8_calibration(model, tokenizer, data["train"]),
        "mini_xception": export_mini_xception(val),
    }


def export_int8_calibration(model, tokenizer, train_rows, images: int = 300) -> dict[str, Any]:
    """The face CNN's activation ranges on 300 training faces, for int8 serving (fusion.quantize)."""
    from fusion.quantize import calibrate_on_rows

    stats = calibrate_on_rows(model, tokenizer, train_rows, images)
    INT8_CALIBRATION.write_text(json.dumps({**stats, "data": "FER2013 train (300 faces, seed 0)"}, indent=1) + "\n")
    return {"file": INT8_CALIBRATION.name, "images": stats["images"]}


@torch.no_grad()
def export_mini_xception(validation) -> dict[str, Any]:
    """fer's mini-Xception needs no training, only a temperature fitted on FER2013 validation."""
    from fusion.encoders import packaged_minilm_path
    from fusion.model import create_model
    from fusion.preprocess import load_tokenizer

    model = create_model("bert-tiny-random", "mini_xception", fusion_hidden=[], image_norm=False).eval()
    model.image_head.weight.copy_(torch.eye(NUM_LABELS))  # its features are its logits
    model.image_head.bias.zero_()
    logits, labels = branch_logits(model, load_tokenizer(packaged_minilm_path()), "image", validation)
    temperature = fit_temperature(logits, labels)
    save_head("mini_xception", model.image_embed, model.image_head, temperature, torch.zeros(NUM_LABELS),
              {"tta": "none", "run": "fer's weights"})  # fmt: skip
    return {
        "temperature": temperature,
        "validation_accuracy": classification_metrics(logits, labels, model.labels)["accuracy"],
    }


@torch.no_grad()
def export_text(run_dir: Path, data: dict) -> dict[str, Any]:
    """The fine-tuned MiniLM (fp16, without the unchanged word embeddings), its head, class-skew shift and temperature."""
    model, tokenizer = load_model_folder(run_dir)
    logits, labels = branch_logits(model, tokenizer, "text", data["validation"])
    prior = torch.bincount(torch.tensor(data["train"]["label"]), minlength=NUM_LABELS).double()
    prior = prior / prior.sum()
    tau, adjustment = choose_logit_adjustment(logits, labels, prior)
    shift = (-tau * torch.log(prior)).float()
    temperature = fit_temperature(logits + shift, labels)
    save_head("text", model.text_embed, model.text_head, temperature, shift, {"tau": f"{tau:.2f}", "run": run_dir.name})
    leave_out = (WORD_EMBEDDINGS,) if _word_embeddings_unchanged(model) else ()
    return {
        "logit_adjustment": {"tau": tau, **adjustment},
        "temperature": temperature,
        "weights": save_encoder(model.text.model, PACKAGED_MINILM_GOEMOTIONS, run_dir, leave_out),
    }


def _word_embeddings_unchanged(model) -> bool:
    """True when the run kept the packaged word embeddings (trained with --freeze-word-embeddings)."""
    from transformers import AutoModel

    from fusion.encoders import packaged_minilm_path

    base = AutoModel.from_pretrained(packaged_minilm_path()).get_input_embeddings().weight
    return torch.equal(base, model.text.model.get_input_embeddings().weight)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("branch", choices=[*BRANCHES, "score"])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT, help="folder with fer2013/ and goemotions/")
    parser.add_argument("--online", action="store_true", help="read the datasets from the Hub instead")
    parser.add_argument("--run-dir", type=Path, default=None, help="training folder (default: runs/default-BRANCH)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last epoch")
    parser.add_argument("--skip-training", action="store_true", help="only export from the finished run in --run-dir")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (quick checks)")
    args = parser.parse_args(argv)
    from train.scoring import score_default

    if args.branch != "score":
        args.run_dir = args.run_dir or Path("runs") / f"default-{args.branch}"
        if not args.skip_training:
            train_branch(args.branch, args)
        data = load_sources(sources(args.branch, args))[0]
        facts = export_face(args.run_dir, data) if args.branch == "face" else export_text(args.run_dir, data)
        write_json(args.run_dir / "export.json", facts)
        print(f"Exported the {args.branch} branch: {facts}\nThen: python -m train.default_assets score")
        return
    from fusion.default_model import face_encoder

    weights = image_spec(face_encoder("face")).weights
    missing = [p.name for p in (*HEADS.values(), weights, PACKAGED_MINILM_GOEMOTIONS) if not p.is_file()]
    if missing:
        raise SystemExit(f"Build both branches first (missing {missing}).")
    score_default(args.data_root, METRICS)


if __name__ == "__main__":
    main()
