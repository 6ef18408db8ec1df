"""The offline default model (fusion/assets/default): trained from real data, one command per branch.

    python -m train.default_assets text  [--data-root ../shared/data | --online] [--run-dir DIR] [--resume]
    python -m train.default_assets face  [...same...]
    python -m train.default_assets build [--text FOLDER] [--face FOLDER]
    python -m train.default_assets score [--data-root ../shared/data]

`text` and `face` train one branch through `python -m train` with the recipe below (a model with one
tower; epoch, test-time augmentation, class-skew adjustment and temperature chosen on validation/dev
only), then `build` the default from that run and the current default's other branch, and `score` it.
`build` combines two finished folders (`train.combine`: each branch's calibrated logits are added) and
writes an ordinary model folder: config.json, model.safetensors (towers in fp16; the text encoder's
unchanged packaged word embeddings left out and taken from the package at load time), the tokenizer,
the int8 calibration and `training_runs.json`. `score` scores it through `EmotionPredictor` on the
validation/dev splits and writes its metrics.json and model card. With --resume a run continues from
its last epoch checkpoint, so a CPU run can go in chunks; each epoch's CPU time is kept in its history.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fusion.encoders import DEFAULT_MODEL
from fusion.quantize import CALIBRATION_FILE
from train.report import write_json

DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
# Copies of the same data on the Hub, for machines without ../shared (the FER2013 one is a community
# parquet copy of the Kaggle release: publicTest = our validation split).
FER_ONLINE = "hub:Aaryan333/fer2013_train_publicTest_privateTest"
GOEMOTIONS_ONLINE = "hub:google-research-datasets/go_emotions:simplified"
RUNS_FILE = "training_runs.json"  # the training_args.json of each branch's run, kept with the default
SENTENCES = Path(__file__).resolve().parent / "sentences" / "train.csv"  # the project's own (heldout.csv: scoring)


@dataclass(frozen=True)
class Branch:
    modality: str  # the tower this branch trains ("text" or "image")
    local: tuple[str, ...]  # train and validation sources under --data-root
    online: tuple[str, ...]  # the same splits on the Hub
    recipe: tuple[str, ...]  # `python -m train` arguments
    teacher: str | None = None  # a branch whose run (runs/default-NAME, trained first if missing) this one starts
    # from and distils: `{teacher}` in a source names its folder


def corpus(name: str, share: float) -> str:
    """A corpus under text/ with its own labels (`train.scoring.CORPUS_LABELS`) and its share of an epoch."""
    from train.scoring import CORPUS_LABELS

    labels = CORPUS_LABELS[name]
    return f"text/{name}" + (f"#labels={','.join(labels)}" if len(labels) < 7 else "") + f"#share={share}"


BRANCHES = {
    # Stage 1, from scratch: FER2013's single labels (the face branch served until FER+ came).
    "face-fer2013": Branch(
        modality="image",
        local=("fer2013",),
        online=(f"{FER_ONLINE}@train", f"{FER_ONLINE}@publicTest"),
        recipe=(
            "--image-encoder", "face_resnet18", "--no-pretrained-image", "--text-encoder", "none",
            "--fusion", "logits", "--epochs", "40", "--batch-size", "64", "--optimizer", "sgd",
            "--lr-encoder", "0.1", "--lr-head", "0.1", "--weight-decay", "5e-4", "--schedule", "cosine",
            "--warmup-ratio", "0.03", "--label-smoothing", "0.1", "--patience", "12", "--seed", "0",
            "--tta", "auto", "--int8-calibration", "300",
        ),
    ),
    # Stage 2: the face tower in the default (stage 1's) fine-tuned on FER+'s crowd-vote distributions, with
    # webcam-like augmentation; histogram equalisation (the registered input) in training and serving alike.
    "face": Branch(
        modality="image",
        local=("ferplus",),
        online=(),  # FER+ votes are read from ../shared/data only
        recipe=(
            "--image-encoder", "face_resnet18", "--text-encoder", "none", "--fusion", "logits",
            "--epochs", "8", "--batch-size", "64", "--optimizer", "sgd", "--lr-encoder", "0.01",
            "--lr-head", "0.05", "--weight-decay", "5e-4", "--schedule", "cosine", "--warmup-ratio", "0.02",
            "--augment", "webcam", "--random-erasing", "0.25", "--select-by", "accuracy", "--patience", "8",
            "--seed", "0", "--tta", "auto", "--int8-calibration", "300",
        ),
    ),
    # Stage 1 of the text branch, from the packaged MiniLM: GoEmotions (Reddit) only; the text branch starts from it.
    "text-goemotions": Branch(
        modality="text",
        local=("goemotions",),
        online=(f"{GOEMOTIONS_ONLINE}@train", f"{GOEMOTIONS_ONLINE}@validation"),
        recipe=(
            "--text-encoder", "minilm-l6", "--image-encoder", "none", "--fusion", "logits",
            "--freeze-word-embeddings", "--epochs", "3", "--batch-size", "32", "--lr-encoder", "5e-5",
            "--lr-head", "1e-3", "--schedule", "linear", "--warmup-ratio", "0.1", "--group-by-length",
            "--patience", "2", "--logit-adjustment",
        ),
    ),
    # The GoEmotions-only branch, continued on nine more corpora and the project's sentences (../shared/data/text/
    # README.md): each corpus's loss covers only the labels its annotators had; an epoch (60,000 rows) draws each
    # corpus by a fixed share (DailyDialog, 74% neutral, a seventh of it); on Reddit rows the target is half the
    # label, half the GoEmotions branch's probabilities softened by temperature 2 (learning without forgetting);
    # the epoch is chosen by the mean of the corpora's dev macro-F1.
    "text": Branch(
        modality="text",
        local=(
            "goemotions#teacher={teacher}#distill=0.5#distill-temperature=2#share=0.30",
            *(corpus(name, share) for name, share in (
                ("crowdflower", 0.08), ("dair_emotion", 0.08), ("xed", 0.07), ("meld", 0.15), ("dailydialog", 0.14),
                ("emorynlp", 0.07), ("enisear", 0.03), ("emotion_stimulus", 0.03))),
            f"{SENTENCES}#weight=2#share=0.05",
        ),
        online=(f"{GOEMOTIONS_ONLINE}@train", f"{GOEMOTIONS_ONLINE}@validation"),  # GoEmotions only
        recipe=(
            "--text-encoder", "minilm-l6", "--image-encoder", "none", "--fusion", "logits",
            "--freeze-word-embeddings", "--epochs", "3", "--batch-size", "32", "--lr-encoder", "5e-5",
            "--lr-head", "1e-3", "--schedule", "linear", "--warmup-ratio", "0.06", "--group-by-length",
            "--epoch-rows", "60000", "--select-by", "source_macro_f1", "--patience", "2", "--logit-adjustment",
        ),
        teacher="text-goemotions",
    ),
}  # fmt: skip


def sources(name: str, args: argparse.Namespace) -> list[str]:
    branch = BRANCHES[name]
    if args.online and not branch.online:
        raise SystemExit(f"The {name} recipe reads its data from --data-root only (no Hub copy).")
    return list(branch.online) if args.online else [str(args.data_root / s) for s in branch.local]


def train_argv(name: str, args: argparse.Namespace) -> list[str]:
    teacher = stage_folder(BRANCHES[name].teacher) if BRANCHES[name].teacher else None
    argv = [arg for source in sources(name, args) for arg in ("--data", source.replace("{teacher}", str(teacher)))]
    argv += [*BRANCHES[name].recipe, "--test-share", "0", "--output-dir", str(args.run_dir)]
    argv += ["--init-from", str(teacher)] if teacher else []
    argv += ["--mixed-precision", "bf16"] if bf16_is_fast() else []
    argv += ["--resume", "latest"] if args.resume and list(args.run_dir.glob("checkpoints/epoch-*")) else []
    return argv + (["--epochs", str(args.epochs)] if args.epochs else [])  # later flags win: a shorter run


def train_branch(name: str, args: argparse.Namespace) -> None:
    """`python -m train` with the branch's recipe; with --resume an interrupted run continues from its last epoch
    (a CPU run can go in chunks)."""
    from train.train import main as train_main

    if args.resume and (args.run_dir / "model.safetensors").is_file():
        return  # finished already
    teacher = BRANCHES[name].teacher
    if teacher and not (stage_folder(teacher) / "model.safetensors").is_file():  # its full recipe, resumable
        train_branch(teacher, argparse.Namespace(**{**vars(args), "run_dir": stage_folder(teacher), "resume": True,
                                                    "epochs": None}))  # fmt: skip
    train_main(train_argv(name, args))


def stage_folder(name: str) -> Path:
    """Where the run of a branch another one starts from lives (relative to the working directory, like --run-dir)."""
    return Path("runs") / f"default-{name}"


def bf16_is_fast() -> bool:
    """bf16 autocast pays on GPUs and on CPUs with native bf16 (AVX512-BF16, AMX); elsewhere it is emulated."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def build(text: Path, face: Path, out: Path = DEFAULT_MODEL, text_base: str | None = None) -> Path:
    """The default folder from a text branch folder and a face branch folder (see the module docstring)."""
    from train.combine import combine
    from train.export import save_model_folder

    model, tokenizer = combine(text, face, text_base=text_base)
    runs = [run for name, folder in (("text", text), ("face", face)) for run in branch_runs(folder, name)]
    if face != out and started_from_default(face):  # a fine-tuned face tower: the runs before it still count
        runs = [run for run in branch_runs(out, "face") if run not in runs] + runs
    with tempfile.TemporaryDirectory() as tmp:  # the sources may be `out` itself
        staged = save_model_folder(model, tokenizer, Path(tmp) / "default", half=True, leave_out_base=True)
        if (face / CALIBRATION_FILE).is_file():
            shutil.copyfile(face / CALIBRATION_FILE, staged / CALIBRATION_FILE)
        write_json(staged / RUNS_FILE, {"runs": runs})
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(staged, out)
    return out


def branch_runs(folder: Path, branch: str) -> list[dict[str, Any]]:
    """The training runs behind one branch of a folder, first to last: a built folder's record, or a run's
    training_args.json after the runs of the folder it started from (`--init-from`)."""
    if (folder / RUNS_FILE).is_file():
        return [r for r in json.loads((folder / RUNS_FILE).read_text())["runs"] if r.get("branch") == branch]
    if not (folder / "training_args.json").is_file():
        return []
    args = json.loads((folder / "training_args.json").read_text())
    earlier = Path(args["init_from"]) if args.get("init_from") else None
    before = branch_runs(earlier, branch) if earlier is not None and earlier.is_dir() else []
    return [*before, {**args, "branch": branch}]


def started_from_default(folder: Path) -> bool:
    """A face run whose tower started from the packaged face ResNet: the default's own (`fusion.encoders`)."""
    args_file = folder / "training_args.json"
    if not args_file.is_file():
        return False
    args = json.loads(args_file.read_text())
    return args.get("image_encoder") == "face_resnet18" and bool(args.get("pretrained_image"))


def recipe_record(name: str, facts: dict[str, Any]) -> dict[str, Any]:
    """A run record from a branch's recipe and known facts (for a branch trained before records were kept)."""
    from train.config import parse_args

    config, _ = parse_args([*BRANCHES[name].recipe, "--data", BRANCHES[name].local[0], "--output-dir", "x"])
    return {**dataclasses.asdict(config), **facts, "branch": name}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=[*BRANCHES, "build", "score"])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT, help="folder with the datasets (../shared/data)")
    parser.add_argument("--online", action="store_true", help="read the datasets from the Hub instead")
    parser.add_argument("--run-dir", type=Path, default=None, help="training folder (default: runs/default-BRANCH)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last epoch")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (quick checks)")
    parser.add_argument("--text", type=Path, default=DEFAULT_MODEL, help="build: the text branch's folder")
    parser.add_argument("--face", type=Path, default=DEFAULT_MODEL, help="build: the face branch's folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL, help="the default model folder (%(default)s)")
    args = parser.parse_args(argv)
    from train.scoring import score_default

    if args.step in BRANCHES:
        args.run_dir = args.run_dir or Path("runs") / f"default-{args.step}"
        train_branch(args.step, args)
        text, face = (args.run_dir, args.out) if BRANCHES[args.step].modality == "text" else (args.out, args.run_dir)
        build(text, face, args.out)
    elif args.step == "build":
        build(args.text, args.face, args.out)
    if args.data_root.is_dir():
        score_default(args.out, args.data_root)
    else:
        print(f"Not scored: no data at {args.data_root} (give --data-root); its metrics.json and card are unchanged.")
    print(f"The default model is in {args.out}")


if __name__ == "__main__":
    main()
