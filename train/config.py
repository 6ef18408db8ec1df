"""Training settings, one source of defaults: hyperparameters (`TrainConfig`) and run settings (`RunArgs`).

The command line is built from these dataclasses: each field's default, help and choices live here only,
and encoder choices come from the registries in `fusion.encoders`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusion.augment import AUGMENTS, SURROUNDS
from fusion.encoders import IMAGE_ENCODERS, NO_ENCODER, TEXT_ENCODERS, TTA_MODES
from fusion.model import DEFAULT_HIDDEN, FUSIONS


def _opt(default: Any = None, help: str = "", group: str = "", **extra: Any) -> Any:
    """A dataclass field whose metadata builds its command-line option."""
    meta = {"help": help, "group": group, **extra}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Hyperparameters: saved with the run (training_args.json) and in the model card."""

    data: list[str] = _opt([], "data source (repeatable): CSV, folder, parquet, GoEmotions TSV, flags:, hub: "
                           "(kinds: train/sources.py); options: SOURCE#weight=0.5#labels=angry,fear#multi=spread",
                           "data", repeat=True, required=True)  # fmt: skip
    skip_bad: bool = _opt(False, "drop bad rows (reported) instead of stopping", "data")
    unreviewed_flags: bool = _opt(False, "flag sources: also train on flags no maintainer reviewed", "data")
    feature_cache: bool = _opt(True, "encode frozen towers once (--no-feature-cache: every epoch)", "data")
    source_temperature: float = _opt(1.0, "each source's share of an epoch ~ its rows ** T (1: as the data, 0.5: "
                                      "small corpora lifted, 0: every source equal)", "data")  # fmt: skip
    epoch_rows: int = _opt(0, "rows drawn per epoch (0: the training rows' number)", "data")
    validation_share: float = _opt(0.1, "validation share carved from sources without a validation split", "data",
                                   unit=True)  # fmt: skip
    test_share: float = _opt(0.1, "test share carved from sources without a test split (0: none)", "data", unit=True)
    text_encoder: str = _opt("minilm-l6", f"registered name ({', '.join(TEXT_ENCODERS)}), Hub id or folder, "
                             f"or {NO_ENCODER} (an image-only model)", "model")  # fmt: skip
    image_encoder: str = _opt("resnet18", f"registered image encoder, or {NO_ENCODER} (a text-only model)", "model",
                              choices=[*sorted(IMAGE_ENCODERS), NO_ENCODER])  # fmt: skip
    fusion: str = _opt("concat", "concat: an MLP over both towers' features; logits: the sum of the branch heads' "
                       "logits (a branch trained alone, combined later)", "model", choices=list(FUSIONS))  # fmt: skip
    pretrained_text: bool = _opt(True, "start from the text encoder's pretrained weights", "model")
    pretrained_image: bool = _opt(True, "start from the image encoder's pretrained weights", "model")
    init_from: str | None = _opt(None, "fine-tune this model folder or Hub repo", "model")
    freeze_text: bool = _opt(False, "keep the text encoder fixed", "model")
    freeze_image: bool = _opt(False, "keep the image encoder fixed", "model")
    freeze_word_embeddings: bool = _opt(False, "keep the text encoder's word embeddings fixed", "model")
    text_branch_at: int | None = _opt(None, "with --init-from: grow a second text path from this encoder layer (a "
                                      "copy of the layers above it) and train only it and the head; the "
                                      "encoder and its first path stay as they were (train.branch)", "model")  # fmt: skip
    fusion_hidden: list[int] = _opt(list(DEFAULT_HIDDEN), "hidden widths of the fusion MLP", "model")
    dropout: float = _opt(0.3, "dropout in the fusion MLP", "model", unit=True)
    modality_dropout: float = _opt(0.3, "share of paired samples shown with one modality hidden", "model", unit=True)
    image_size: int | None = _opt(None, "face crop side in pixels (default: the image encoder's own)", "model")
    epochs: int = _opt(5, "passes over the training data", "optimisation", minimum=1)
    batch_size: int = _opt(16, "samples per step and process", "optimisation", minimum=1)
    optimizer: str = _opt("adamw", "AdamW, or SGD with Nesterov momentum 0.9", "optimisation", choices=["adamw", "sgd"])
    lr_head: float = _opt(1e-3, "learning rate of the heads and embeddings", "optimisation")
    lr_encoder: float = _opt(2e-5, "learning rate of the encoders", "optimisation")
    weight_decay: float = _opt(0.01, "weight decay (not on norms, biases and placeholders)", "optimisation")
    warmup_ratio: float = _opt(0.1, "share of steps with a rising learning rate", "optimisation", unit=True)
    schedule: str = _opt("linear", "learning-rate schedule after warm-up", "optimisation",
                         choices=["linear", "cosine", "constant"])  # fmt: skip
    grad_accum: int = _opt(1, "steps whose gradients are summed before an update", "optimisation", minimum=1)
    class_weights: bool = _opt(False, "weight the loss by inverse class frequency", "optimisation")
    label_smoothing: float = _opt(0.0, "share of each target spread over all classes", "optimisation", unit=True)
    random_erasing: float = _opt(0.0, "chance that a training image gets a random patch blanked", "optimisation",
                                 unit=True)  # fmt: skip
    augment: str = _opt("basic", "training image augmentation: basic (crops, flips, turns, brightness) or webcam "
                        "(the crop jittered as a detector places it, blur, low resolution, JPEG, exposure)",
                        "optimisation", choices=list(AUGMENTS))  # fmt: skip
    surround: str = _opt("keep", "training faces cut out on black (effectnet): keep as they are, inner (their inner "
                         "80%), or random (the surround filled at random, other faces cut out now and then): the "
                         "surround must not tell one face set from another", "optimisation",
                         choices=list(SURROUNDS))  # fmt: skip
    group_by_length: bool = _opt(False, "batch texts of similar length together (less padding)", "optimisation")
    patience: int = _opt(3, "early stop after this many epochs without a validation gain", "optimisation", minimum=1)
    select_by: str = _opt("macro_f1", "validation score that picks the epoch: macro-F1 over all rows, the mean of "
                          "each source's macro-F1 over its own labels, accuracy, or the loss against the (soft) targets",
                          "optimisation", choices=["macro_f1", "accuracy", "source_macro_f1", "loss"])  # fmt: skip
    seed: int = _opt(0, "seed for splits, initialisation and shuffling", "optimisation")
    tta: str = _opt("none", "image test-time augmentation served; auto: chosen on validation", "calibration",
                    choices=[*TTA_MODES, "auto"])  # fmt: skip
    logit_adjustment: bool = _opt(False, "subtract tau * log(class prior), tau chosen on validation", "calibration")
    adjust_on: str | None = _opt(None, "choose that tau by mean per-class recall on the validation rows of the source "
                                 "whose --data value contains this (a class-balanced set: every emotion equally "
                                 "likely, as visitors to a demo make them)", "calibration")  # fmt: skip
    int8_calibration: int = _opt(0, "training images to measure int8 activation ranges on (0: none)", "calibration")


@dataclass
class RunArgs:
    """Where and how a run executes: not hyperparameters, so not in the model card's settings."""

    output_dir: Path = _opt(None, "folder for the model, metrics, card and checkpoints", "infrastructure",
                            required=True)  # fmt: skip
    resume: str | None = _opt(None, "checkpoint folder, or 'latest' in --output-dir", "infrastructure")
    keep_checkpoints: int = _opt(2, "epoch checkpoints kept", "infrastructure", minimum=1)
    mixed_precision: str = _opt("no", "autocast dtype", "infrastructure", choices=["no", "fp16", "bf16"])
    cpu: bool = _opt(False, "train on the CPU even if a GPU is present", "infrastructure")
    num_workers: int = _opt(0, "data-loading worker processes", "infrastructure")
    log_with: str | None = _opt(None, "experiment tracker", "infrastructure", choices=["tensorboard"])
    push_to_hub: str | None = _opt(None, "push the trained model to this Hub repo", "infrastructure", metavar="REPO")
    private: bool = _opt(False, "create the Hub repo as private", "infrastructure")


def _add_options(parser: argparse.ArgumentParser, cls: type, groups: dict[str, Any]) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta, kind = f.metadata, hints[f.name]
        group = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        flag = "--" + f.name.replace("_", "-")
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if kind is bool:
            if default:
                group.add_argument("--no-" + flag[2:], dest=f.name, action="store_false", help=meta["help"])
            else:
                group.add_argument(flag, action="store_true", help=meta["help"])
            continue
        options: dict[str, Any] = {"dest": f.name, "help": meta["help"]}
        if meta.get("repeat"):
            options.update(action="append", default=None)
        else:
            options["default"] = default
        if meta.get("required"):
            options["required"] = True
        for key in ("choices", "metavar"):
            if key in meta:
                options[key] = meta[key]
        base = typing.get_args(kind)[0] if typing.get_args(kind) else kind  # list[int] -> int, int | None -> int
        options["type"] = {Path: Path, int: int, float: float}.get(base, str)
        if typing.get_origin(kind) is list and not meta.get("repeat"):
            options["nargs"] = "*"
        if default not in (None, [], "") and not isinstance(default, list):
            options["help"] += " (default: %(default)s)"
        group.add_argument(flag, **options)


def build_parser(description: str = "") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups: dict[str, Any] = {}
    _add_options(parser, TrainConfig, groups)
    _add_options(parser, RunArgs, groups)
    return parser


def parse_args(argv: list[str] | None = None, description: str = "") -> tuple[TrainConfig, RunArgs]:
    """argv (a list, so tests call it directly) -> (hyperparameters, run settings); bad values exit with a message."""
    parser = build_parser(description)
    args = vars(parser.parse_args(argv))
    for cls in (TrainConfig, RunArgs):
        for f in dataclasses.fields(cls):
            value, flag = args[f.name], "--" + f.name.replace("_", "-")
            if "minimum" in f.metadata and value < f.metadata["minimum"]:
                parser.error(f"{flag} must be at least {f.metadata['minimum']}")
            if f.metadata.get("unit") and not 0 <= value < 1:
                parser.error(f"{flag} must be in [0, 1)")
    pick = lambda cls: cls(**{f.name: args[f.name] for f in dataclasses.fields(cls)})  # noqa: E731
    return pick(TrainConfig), pick(RunArgs)
