"""The offline default model (fusion/assets/default): trained from real data, one command per branch.

    python -m train.default_assets face  [--data-root ../shared/data] [--run-dir DIR] [--resume]
    python -m train.default_assets text  [...same...]
    python -m train.default_assets text-goemotions [...same..., or --online]
    python -m train.default_assets text-mix | text-five [...same...]   (stages to compare)
    python -m train.default_assets build [--text FOLDER] [--face FOLDER]
    python -m train.default_assets score [--data-root ../shared/data]

`face` and `text` train the default's two branches through `python -m train` with the recipes below (a model
with one tower, trained from the registered encoder's own start: a random face ResNet, the packaged MiniLM;
epoch, test-time augmentation, class-prior adjustment and temperature chosen on validation/dev only), then
`build` the default from that run and the current default's other branch, and `score` it. Other recipes
(stages to compare) train into their run folder and leave the default alone. `build` combines two finished
folders (`train.combine`: each branch's calibrated logits are added) and writes an ordinary model folder:
config.json, model.safetensors (towers in fp16; the text encoder's unchanged packaged word embeddings left out and
taken from the package at load time), the tokenizer, the int8 calibration, `training_runs.json`, and the
metrics and card (scored again when the data is there; otherwise the card says the folder is unscored). `score`
scores a folder through `EmotionPredictor` on the validation/dev splits and writes its metrics.json and model
card. With --resume a run continues from its last epoch checkpoint, so a CPU run can go in chunks; each epoch's
CPU time is kept in its history.
"""

from __future__ import annotations

import argparse
import json
import os
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
    online: tuple[str, ...]  # the same data on the Hub; () when some of it has no Hub copy (--online refuses)
    recipe: tuple[str, ...]  # `python -m train` arguments
    serves: bool = True  # the default's own branch (False: a stage to compare, trained beside the default)
    teacher: str | None = None  # a stage whose run (runs/default-NAME, trained first if missing) this one distils:
    # `{teacher}` in a source names its folder
    start: str | None = None  # a stage whose run (trained first if missing) this one starts from (--init-from)
    route: bool = False  # the run grows a text branch; served routed with the run it started from: a head per
    # corpus of that run's data and a router between them (`train.route.route_folder`)


def corpus(name: str, share: float) -> str:
    """A corpus under text/ with its own labels (`train.scoring.CORPUS_LABELS`) and its share of an epoch."""
    from train.scoring import CORPUS_LABELS

    labels = CORPUS_LABELS[name]
    return f"text/{name}" + (f"#labels={','.join(labels)}" if len(labels) < 7 else "") + f"#share={share}"


BRANCHES = {
    # A face ResNet from scratch on three face sets (../shared/data/README.md): FER+'s crowd-vote distributions,
    # FER2013's own labels on the same faces at a quarter weight (measured on one-epoch pilots, docs/training.md:
    # at half weight FER+ validation lost 2.7 points for FER2013's 2.9; a quarter counts the old label like 2.5
    # of FER+'s 10 votes), and effectnet's class-balanced in-the-wild faces, with webcam-like augmentation.
    # effectnet's black surround is filled at random and other faces are cut out now and then, so the surround
    # tells no set from another (`fusion.augment`; kept as it was, effectnet's faces placed in pictures lost 10
    # points). The epoch is chosen by the mean of the three sets' validation macro-F1; the class-prior adjustment
    # by mean per-class recall on effectnet validation (every emotion equally likely, as a demo's visitors make them).
    "face": Branch(
        modality="image",
        local=("ferplus", "fer2013#weight=0.25", "effectnet"),
        online=(),  # FER+ votes and effectnet are read from --data-root only
        recipe=(
            "--image-encoder", "face_resnet18", "--text-encoder", "none", "--fusion", "logits",
            "--epochs", "24", "--epoch-rows", "40000", "--batch-size", "64", "--optimizer", "sgd",
            "--lr-encoder", "0.1", "--lr-head", "0.1", "--weight-decay", "5e-4", "--schedule", "cosine",
            "--warmup-ratio", "0.02", "--label-smoothing", "0.05", "--augment", "webcam", "--surround", "random",
            "--random-erasing", "0.25", "--select-by", "source_macro_f1", "--patience", "24", "--seed", "0",
            "--tta", "flip",
            "--logit-adjustment", "--adjust-on", "effectnet", "--int8-calibration", "300",
        ),
    ),
    # The GoEmotions-only text branch (the default's before the corpora mix; kept to compare): text-mix starts from it.
    "text-goemotions": Branch(
        serves=False,
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
    # The default's text branch: one encoder, two paths, routed by the kind of text. The first path is `text-mix`
    # (ten corpora); the second a copy of its top three layers over the shared lower three, trained on GoEmotions
    # alone with the first path fixed. Served routed (`train.route`): a head per corpus of text-mix's data, each the
    # pool of both calibrated heads at its own class-prior adjustment and Reddit weight, chosen on dev, and a router
    # that reads which corpus a text is like. A text costs the encoder plus three layers (1.40x fp32, 1.46x int8).
    "text": Branch(
        modality="text",
        local=("goemotions",),
        online=(),  # it starts from text-mix, whose corpora are read from --data-root
        recipe=(
            "--text-encoder", "minilm-l6", "--image-encoder", "none", "--fusion", "logits", "--text-branch-at", "3",
            "--epochs", "2", "--batch-size", "32", "--lr-encoder", "5e-5", "--lr-head", "1e-3", "--schedule",
            "linear", "--warmup-ratio", "0.1", "--group-by-length", "--patience", "2", "--logit-adjustment",
        ),
        start="text-mix",
        route=True,
    ),
    # The first path of the default's text branch (`text`; alone, measured in docs/training.md): the
    # GoEmotions-only branch continued on nine more corpora and the project's sentences, with the second batch
    # (DailyDialog, EmoryNLP, enISEAR, Emotion-Stimulus); an epoch (60,000 rows) draws each corpus by a fixed
    # share (DailyDialog, 74% neutral, a seventh of it); on Reddit rows the target is half the label, half the
    # GoEmotions branch's probabilities softened by temperature 2 (learning without forgetting).
    "text-mix": Branch(
        serves=False,
        modality="text",
        local=(
            "goemotions#teacher={teacher}#distill=0.5#distill-temperature=2#share=0.30",
            *(corpus(name, share) for name, share in (
                ("crowdflower", 0.08), ("dair_emotion", 0.08), ("xed", 0.07), ("meld", 0.15), ("dailydialog", 0.14),
                ("emorynlp", 0.07), ("enisear", 0.03), ("emotion_stimulus", 0.03))),
            f"{SENTENCES}#weight=2#share=0.05",
        ),
        online=(),
        recipe=(
            "--text-encoder", "minilm-l6", "--image-encoder", "none", "--fusion", "logits",
            "--freeze-word-embeddings", "--epochs", "3", "--batch-size", "32", "--lr-encoder", "5e-5",
            "--lr-head", "1e-3", "--schedule", "linear", "--warmup-ratio", "0.06", "--group-by-length",
            "--epoch-rows", "60000", "--select-by", "source_macro_f1", "--patience", "2", "--logit-adjustment",
        ),
        teacher="text-goemotions",
        start="text-goemotions",
    ),
    # The default's text branch before the routed one (kept to compare): the packaged MiniLM fine-tuned on five
    # corpora and the project's sentences (../shared/data/text/README.md).
    # Each corpus's loss covers only the labels its annotators had; noisy corpora (CrowdFlower, XED) count half;
    # an epoch (60,000 rows) draws each corpus by the square root of its size; the epoch is chosen by the mean of
    # the corpora's dev macro-F1. Measured on dev, starting from the GoEmotions-only branch instead (one epoch of
    # this mix, GoEmotions double, lr 3e-5) scored lower on every corpus but GoEmotions (mean 0.500 vs 0.539).
    "text-five": Branch(
        serves=False,
        modality="text",
        local=(
            "goemotions",
            "text/crowdflower#labels=angry,fear,happy,neutral,sad,surprise#weight=0.5",
            "text/dair_emotion#labels=angry,fear,happy,sad,surprise",
            "text/xed#labels=angry,disgust,fear,happy,sad,surprise#weight=0.5",
            "text/meld",
            f"{SENTENCES}#weight=2",
        ),
        online=(),  # only GoEmotions has a Hub copy: the other corpora are read from --data-root
        recipe=(
            "--text-encoder", "minilm-l6", "--image-encoder", "none", "--fusion", "logits",
            "--freeze-word-embeddings", "--epochs", "3", "--batch-size", "32", "--lr-encoder", "5e-5",
            "--lr-head", "1e-3", "--schedule", "linear", "--warmup-ratio", "0.06", "--group-by-length",
            "--source-temperature", "0.5", "--epoch-rows", "60000", "--select-by", "source_macro_f1",
            "--patience", "2", "--logit-adjustment",
        ),
    ),
}  # fmt: skip


def sources(name: str, args: argparse.Namespace) -> list[str]:
    """The recipe's `--data` values: its Hub copies with --online, else its folders under --data-root; a recipe
    whose data is not all there refuses, naming what it lacks."""
    branch = BRANCHES[name]
    if args.online:
        if not branch.online:
            local = ", ".join(dict.fromkeys(s.split("#")[0] for s in stage_data(name) if not Path(s).is_absolute()))
            raise SystemExit(f"The {name} recipe has no Hub copy of all its data ({local}): run it with --data-root "
                             "pointing at a folder that holds them (../shared/data on the project's machines).")  # fmt: skip
        return list(branch.online)
    refs = [str(args.data_root / s) for s in branch.local]
    missing = [ref.split("#")[0] for ref in refs if not Path(ref.split("#")[0]).exists()]
    if missing:
        online = " (or --online: it reads the Hub copies)" if branch.online else ""
        raise SystemExit(f"The {name} recipe needs {', '.join(missing)}: give --data-root a folder that holds "
                         f"them{online}.")  # fmt: skip
    # the record names the default data as every clone has it (../shared/data), not by this machine's path
    return [os.path.relpath(ref) for ref in refs] if args.data_root == DATA_ROOT else refs


def stages(name: str) -> list[str]:
    """The stages a recipe starts from or distils (trained first when missing)."""
    return list(dict.fromkeys(filter(None, (BRANCHES[name].start, BRANCHES[name].teacher))))


def stage_data(name: str) -> list[str]:
    """The data a recipe reads with the stages before it."""
    return [source for stage in stages(name) for source in stage_data(stage)] + list(BRANCHES[name].local)


def train_argv(name: str, args: argparse.Namespace) -> list[str]:
    branch = BRANCHES[name]
    teacher = stage_folder(branch.teacher) if branch.teacher else None
    argv = [arg for source in sources(name, args) for arg in ("--data", source.replace("{teacher}", str(teacher)))]
    argv += [*branch.recipe, "--test-share", "0", "--output-dir", str(args.run_dir)]
    argv += ["--init-from", str(stage_folder(branch.start))] if branch.start else []
    argv += ["--mixed-precision", "bf16"] if bf16_is_fast() else []
    argv += ["--resume", "latest"] if args.resume and list(args.run_dir.glob("checkpoints/epoch-*")) else []
    return argv + (["--epochs", str(args.epochs)] if args.epochs else [])  # later flags win: a shorter run


def train_branch(name: str, args: argparse.Namespace) -> None:
    """`python -m train` with the branch's recipe; with --resume an interrupted run continues from its last epoch
    (a CPU run can go in chunks)."""
    from train.train import main as train_main

    if args.resume and (args.run_dir / "model.safetensors").is_file():
        return  # finished already
    for stage in stages(name):
        if not (stage_folder(stage) / "model.safetensors").is_file():  # its full recipe, resumable
            train_branch(stage, argparse.Namespace(**{**vars(args), "run_dir": stage_folder(stage), "resume": True,
                                                      "epochs": None}))  # fmt: skip
    train_main(train_argv(name, args))


def served_folder(name: str, args: argparse.Namespace) -> Path:
    """The folder a branch serves: its run, or for a grown text branch its run routed with the run it started
    from (made once; again unless --resume finds it)."""
    if not BRANCHES[name].route:
        return args.run_dir
    from train.route import route_folder

    out = args.run_dir / "routed"
    if not (args.resume and (out / "model.safetensors").is_file()):
        route_folder(stage_folder(BRANCHES[name].start), args.run_dir, out)
    return out


def stage_folder(name: str) -> Path:
    """Where the run of a branch another one starts from lives (relative to the working directory, like --run-dir)."""
    return Path("runs") / f"default-{name}"


def bf16_is_fast() -> bool:
    """bf16 autocast pays on GPUs and on CPUs with native bf16 (AVX512-BF16, AMX); elsewhere it is emulated."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def build(text: Path, face: Path, out: Path = DEFAULT_MODEL, data_root: Path | None = None) -> Path:
    """The default folder from a text branch folder and a face branch folder (see the module docstring). Its
    metrics.json and card are kept when the weights are unchanged, scored again when `data_root` holds the data,
    and otherwise replaced by a card that says the folder is unscored."""
    from train.combine import combine
    from train.export import save_model_folder

    model, tokenizer = combine(text, face)
    runs = [run for name, folder in (("text", text), ("face", face)) for run in branch_runs(folder, name)]
    with tempfile.TemporaryDirectory() as tmp:  # the sources may be `out` itself
        staged = save_model_folder(model, tokenizer, Path(tmp) / "default", half=True, leave_out_base=True)
        if (face / CALIBRATION_FILE).is_file():
            shutil.copyfile(face / CALIBRATION_FILE, staged / CALIBRATION_FILE)
        write_json(staged / RUNS_FILE, {"runs": runs})
        kept = keep_scores(out, staged)
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(staged, out)
    if kept:
        print(f"Same weights and runs as before: {', '.join(kept)} kept.")
    elif data_root is not None and data_root.is_dir():
        from train.scoring import score_default

        score_default(out, data_root)
    else:
        write_unscored_card(out, model, runs)
        print(f"Not scored (no data at {data_root}): the card says so; `score --data-root DIR` scores it.")
    return out


SCORES = ("metrics.json", "README.md")  # what `score` writes into a built folder


def keep_scores(old: Path, staged: Path) -> list[str]:
    """Copy `old`'s scores into `staged` when both hold the same weights, config and runs; the names copied."""
    same = all(
        (old / name).is_file() and same_content(old / name, staged / name)
        for name in ("model.safetensors", "config.json", RUNS_FILE)
    )
    kept = [name for name in SCORES if same and (old / name).is_file()]
    for name in kept:
        shutil.copyfile(old / name, staged / name)
    return kept


def same_content(a: Path, b: Path) -> bool:
    """Byte equality, except that a safetensors header is compared as JSON: its writer orders the metadata
    keys differently from one process to the next, so the same weights saved twice differ in their bytes."""
    first, second = a.read_bytes(), b.read_bytes()
    if a.suffix != ".safetensors" or first == second:
        return first == second
    import struct

    def split(data: bytes) -> tuple[Any, bytes]:
        size = struct.unpack("<Q", data[:8])[0]
        return json.loads(data[8 : 8 + size]), data[8 + size :]

    return split(first) == split(second)


def write_unscored_card(folder: Path, model, runs: list[dict[str, Any]]) -> None:
    from train.report import write_model_card

    (folder / "metrics.json").unlink(missing_ok=True)
    note = ("This folder has not been scored: no evaluation data was at hand when it was built "
            "(`python -m train.default_assets score --data-root DIR --out FOLDER` scores it).")  # fmt: skip
    write_model_card(folder, {"evaluations": []}, runs, model, repo_id="emotion-fusion offline default", notes=note)


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=[*BRANCHES, "build", "score"])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT, help="folder with the datasets (../shared/data)")
    parser.add_argument("--online", action="store_true", help="read the datasets from the Hub instead")
    parser.add_argument("--run-dir", type=Path, default=None, help="training folder (default: runs/default-BRANCH)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last epoch")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (quick checks)")
    parser.add_argument("--text", type=Path, default=DEFAULT_MODEL, help="the text branch's folder (build, face)")
    parser.add_argument("--face", type=Path, default=DEFAULT_MODEL, help="the face branch's folder (build, text)")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL, help="the default model folder (%(default)s)")
    args = parser.parse_args(argv)
    data_root = None if args.online else args.data_root
    if args.step in BRANCHES:
        branch = BRANCHES[args.step]
        args.run_dir = args.run_dir or stage_folder(args.step)
        train_branch(args.step, args)
        served = served_folder(args.step, args)
        if not branch.serves:
            print(f"{args.step} is a stage to compare, not a branch of the default: the model is in {served}")
            return
        text, face = (served, args.face) if branch.modality == "text" else (args.text, served)
        build(text, face, args.out, data_root)
    elif args.step == "build":
        build(args.text, args.face, args.out, data_root)
    elif data_root is None or not data_root.is_dir():
        raise SystemExit(f"Nothing to score with: no data at {args.data_root} (give --data-root).")
    else:
        from train.scoring import score_default

        score_default(args.out, data_root)
    print(f"The default model is in {args.out}")


if __name__ == "__main__":
    main()
