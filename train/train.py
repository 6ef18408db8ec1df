"""Train or fine-tune the fusion model with Accelerate (CPU, one GPU, or `accelerate launch`).

    python -m train --data data.csv --output-dir runs/exp1 [--epochs 5] [--freeze-image] ...
    accelerate launch --num_processes 2 -m train --data ... --output-dir ...

Reads top to bottom: config, data, model, feature cache, optimiser, loop, final report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from tqdm.auto import tqdm

from fusion.encoders import text_spec
from fusion.hub import load_model_folder, resolve_model_source, save_model_folder
from fusion.model import EmotionFusionModel, create_model
from fusion.preprocess import Preprocessor, load_tokenizer
from train.data import DataError, load_sources, split_dataset
from train.evaluate import ablation, calibration, collect_logits
from train.feature_cache import FeatureCache, build_cache, cached_inputs
from train.loader import make_loader
from train.metrics import classification_metrics, fit_temperature
from train.report import confusion_png, write_metrics, write_model_card

logger = logging.getLogger("train")
AUX_LOSS_WEIGHT = 0.5  # the per-modality heads the app shows are trained beside the fused head


@dataclass
class TrainConfig:
    """Hyperparameters; saved with the run and in the model card."""

    data: list[str] = field(default_factory=list)
    text_encoder: str = "minilm-l6"
    image_encoder: str = "resnet18"
    pretrained_text: bool = True
    pretrained_image: bool = True
    init_from: str | None = None
    freeze_text: bool = False
    freeze_image: bool = False
    fusion_hidden: list[int] = field(default_factory=lambda: [512])
    dropout: float = 0.3
    modality_dropout: float = 0.3
    image_size: int = 224
    epochs: int = 5
    batch_size: int = 16
    lr_head: float = 1e-3
    lr_encoder: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: str = "linear"
    grad_accum: int = 1
    class_weights: bool = False
    patience: int = 3
    seed: int = 0
    validation_share: float = 0.1
    test_share: float = 0.1
    skip_bad: bool = False
    feature_cache: bool = True


# ---------------------------------------------------------------------------------------------


def build_model(config: TrainConfig) -> tuple[EmotionFusionModel, Any]:
    """A fresh model from named encoders, or an existing model folder / repo to fine-tune."""
    if config.init_from:
        model, tokenizer = load_model_folder(resolve_model_source(config.init_from))
        model.set_frozen(text=config.freeze_text, image=config.freeze_image)
        model.modality_dropout = config.modality_dropout
        return model, tokenizer
    model = create_model(
        config.text_encoder,
        config.image_encoder,
        pretrained_text=config.pretrained_text,
        pretrained_image=config.pretrained_image,
        fusion_hidden=config.fusion_hidden,
        dropout=config.dropout,
        freeze_text=config.freeze_text,
        freeze_image=config.freeze_image,
        modality_dropout=config.modality_dropout,
        preprocess={"image_size": config.image_size},
    )
    return model, load_tokenizer(text_spec(config.text_encoder).resolve_tokenizer())


def param_groups(model: EmotionFusionModel, config: TrainConfig) -> list[dict[str, Any]]:
    """Encoders at `lr_encoder`, everything else (embeddings, heads) at `lr_head`; no decay on norms/biases."""
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = config.lr_encoder if name.startswith(("text.", "image.")) else config.lr_head
        decay = 0.0 if param.ndim < 2 or "placeholder" in name else config.weight_decay
        groups.setdefault((lr, decay), []).append(param)
    return [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]


def class_weight_tensor(labels: list[int], num_labels: int) -> torch.Tensor:
    counts = torch.bincount(torch.tensor(labels), minlength=num_labels).float()
    return counts.sum() / (num_labels * counts.clamp(min=1))


def loss_fn(out, labels: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    loss = F.cross_entropy(out.logits.float(), labels, weight=weight)
    for logits, present in ((out.text_logits, out.text_present), (out.image_logits, out.image_present)):
        if present.any():
            loss = loss + AUX_LOSS_WEIGHT * F.cross_entropy(logits[present].float(), labels[present], weight=weight)
    return loss


# ---------------------------------------------------------------------------------------------


def train(config: TrainConfig, args: argparse.Namespace) -> dict[str, Any]:
    # A batch may lack a modality entirely (text-only data, modality dropout): DDP must allow unused weights.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    accelerator = Accelerator(
        kwargs_handlers=[ddp],
        cpu=args.cpu,
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=config.grad_accum,
        log_with=args.log_with,
        project_dir=str(args.output_dir),
    )
    set_seed(config.seed)
    out_dir = Path(args.output_dir)

    # -- data ---------------------------------------------------------------------------------
    with accelerator.main_process_first():
        by_split, report = load_sources(config.data, skip_bad=config.skip_bad)
        splits = split_dataset(by_split, config.seed, config.validation_share, config.test_share)
    sizes = {k: len(v) for k, v in splits.items()}
    accelerator.print(f"Data: {sizes} rows" + (f"; dropped {len(report.bad)} bad row(s)" if report.bad else ""))

    # -- model --------------------------------------------------------------------------------
    model, tokenizer = build_model(config)
    names = list(model.labels)
    train_prep = Preprocessor(model.preprocess_cfg, tokenizer, is_train=True)
    eval_prep = Preprocessor(model.preprocess_cfg, tokenizer, is_train=False)
    model.to(accelerator.device)

    # -- frozen encoders: features computed once ---------------------------------------------
    cache: dict[str, FeatureCache] = {}
    cache_started = time.perf_counter()
    if config.feature_cache and (config.freeze_text or config.freeze_image):
        for split in ("train", "validation"):
            if split in splits:
                cache[split] = build_cache(model, eval_prep, splits[split], config.batch_size * 2, accelerator, split)
        accelerator.print(
            "Feature cache in use: frozen "
            + " and ".join(m for m, f in (("text", config.freeze_text), ("image", config.freeze_image)) if f)
            + " encoder features computed once (no image augmentation for a frozen image encoder);"
            " later epochs run only the rest of the model."
        )
    cache_seconds = time.perf_counter() - cache_started
    train_loader = make_loader(
        splits["train"],
        train_prep,
        config.batch_size,
        shuffle=True,
        num_workers=args.num_workers,
        seed=config.seed,
        use_images=not (config.freeze_image and "train" in cache),
        use_texts=not (config.freeze_text and "train" in cache),
    )
    val_loader = make_loader(
        splits["validation"],
        eval_prep,
        config.batch_size * 2,
        shuffle=False,
        use_images=not (config.freeze_image and "validation" in cache),
        use_texts=not (config.freeze_text and "validation" in cache),
    )

    # -- optimiser and schedule ---------------------------------------------------------------
    from transformers import get_scheduler

    optimizer = torch.optim.AdamW(param_groups(model, config))
    steps_per_epoch = math.ceil(len(train_loader) / (config.grad_accum * accelerator.num_processes))
    total_steps = max(1, steps_per_epoch * config.epochs)
    scheduler = get_scheduler(
        config.schedule if config.schedule != "constant" else "constant_with_warmup",
        optimizer,
        num_warmup_steps=int(config.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
    weight = (
        class_weight_tensor(splits["train"]["label"], len(names)).to(accelerator.device)
        if config.class_weights
        else None
    )
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler
    )
    if args.log_with:
        accelerator.init_trackers("emotion-fusion", config=_flat(dataclasses.asdict(config)))

    # -- resume -------------------------------------------------------------------------------
    progress = {"epoch": 0, "best_f1": -1.0, "bad_epochs": 0, "history": []}
    checkpoints = out_dir / "checkpoints"
    if args.resume:
        resume_dir = _latest_checkpoint(checkpoints) if args.resume == "latest" else Path(args.resume)
        if resume_dir is None or not resume_dir.is_dir():
            raise SystemExit(f"error: no checkpoint to resume from at {args.resume} (looked in {checkpoints}).")
        accelerator.load_state(str(resume_dir))
        progress = json.loads((resume_dir / "progress.json").read_text())
        accelerator.print(f"Resumed from {resume_dir} after epoch {progress['epoch']}")

    # -- loop ---------------------------------------------------------------------------------
    best_path = out_dir / "best"
    for epoch in range(progress["epoch"], config.epochs):
        model.train()
        started, seen, total_loss = time.perf_counter(), 0, 0.0
        bar = tqdm(
            train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not accelerator.is_local_main_process
        )
        for batch in bar:
            with accelerator.accumulate(model):
                inputs = cached_inputs(cache.get("train"), batch)
                loss = loss_fn(model(**inputs), batch["labels"], weight)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            seen += len(batch["labels"])
            total_loss += loss.detach().item() * len(batch["labels"])
            bar.set_postfix(loss=f"{total_loss / seen:.4f}")
        epoch_time = time.perf_counter() - started

        logits, labels = collect_logits(model, val_loader, accelerator, "validation", cache.get("validation"))
        val = classification_metrics(logits, labels, names)
        record = {
            "epoch": epoch + 1,
            "train_loss": total_loss / max(seen, 1),
            "val_accuracy": val["accuracy"],
            "val_macro_f1": val["macro_f1"],
            "epoch_seconds": epoch_time,
            "samples_per_second": seen * accelerator.num_processes / epoch_time,
        }
        progress["history"].append(record)
        accelerator.log({k: v for k, v in record.items() if k != "epoch"}, step=epoch + 1)
        accelerator.print(
            f"epoch {epoch + 1}: loss {record['train_loss']:.4f}, val acc {val['accuracy']:.3f}, "
            f"val macro-F1 {val['macro_f1']:.3f} ({epoch_time:.1f}s)"
        )
        improved = val["macro_f1"] > progress["best_f1"]
        if improved:
            progress["best_f1"], progress["bad_epochs"] = val["macro_f1"], 0
            _save_weights(accelerator, model, best_path)
        else:
            progress["bad_epochs"] += 1
        progress["epoch"] = epoch + 1
        _checkpoint(accelerator, checkpoints / f"epoch-{epoch + 1}", progress, args.keep_checkpoints)
        if progress["bad_epochs"] >= config.patience:
            accelerator.print(f"Early stop: no validation macro-F1 gain in {config.patience} epoch(s).")
            break

    # -- final model, calibration, test report -------------------------------------------------
    accelerator.wait_for_everyone()
    model = accelerator.unwrap_model(model)
    if (best_path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(best_path / "model.safetensors"))  # copied onto the model's device
    model.eval()
    logits, labels = collect_logits(model, val_loader, accelerator, "validation", cache.get("validation"))
    temperature = fit_temperature(logits, labels)
    model.set_temperature(temperature)
    test_results, raw = ablation(model, eval_prep, splits["test"], config.batch_size * 2, accelerator, names)
    metrics = {
        "validation": classification_metrics(logits, labels, names),
        "test": test_results,
        "calibration": calibration(*raw["image+text"], temperature) if "image+text" in raw else {},
        "history": progress["history"],
        "feature_cache_seconds": cache_seconds if cache else None,
    }
    if accelerator.is_main_process:
        training = {
            **dataclasses.asdict(config),
            "sizes": sizes,
            "epochs_run": progress["epoch"],
            "processes": accelerator.num_processes,
            "mixed_precision": args.mixed_precision,
            "base_models": _base_models(config),
        }
        save_model_folder(model, tokenizer, out_dir)
        write_metrics(out_dir, metrics)
        (out_dir / "training_args.json").write_text(json.dumps(training, indent=2, sort_keys=True) + "\n")
        if "image+text" in test_results:
            confusion_png(test_results["image+text"]["confusion_matrix"], names, out_dir / "confusion_matrix.png")
        write_model_card(out_dir, metrics, training)
        accelerator.print(f"Saved model, metrics and model card to {out_dir}")
    accelerator.end_training()
    return metrics


def _save_weights(accelerator: Accelerator, model, folder: Path) -> None:
    if accelerator.is_main_process:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in accelerator.unwrap_model(model).state_dict().items()}
        save_file(state, folder / "model.safetensors")


def _checkpoint(accelerator: Accelerator, folder: Path, progress: dict[str, Any], keep: int) -> None:
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        (folder / "progress.json").write_text(json.dumps(progress, indent=2))
        old = sorted(folder.parent.glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))[:-keep]
        for stale in old:
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()


def _latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))
    return found[-1] if found else None


def _base_models(config: TrainConfig) -> list[str]:
    if config.init_from:
        return [config.init_from]
    return [config.text_encoder] if config.pretrained_text and "/" in config.text_encoder else []


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    """Trackers accept scalars only."""
    return {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in data.items()}


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--data", action="append", required=True, help="data source (repeatable): CSV, folder, hub:ID")
    data.add_argument("--skip-bad", action="store_true", help="drop bad rows (reported) instead of stopping")
    data.add_argument(
        "--no-feature-cache", dest="feature_cache", action="store_false", help="re-encode frozen towers every epoch"
    )
    data.add_argument("--validation-share", type=float, default=0.1)
    data.add_argument("--test-share", type=float, default=0.1)
    model = parser.add_argument_group("model")
    model.add_argument("--text-encoder", default="minilm-l6", help="registered name, Hub id or folder")
    model.add_argument("--image-encoder", default="resnet18", choices=["resnet18", "resnet34", "resnet50"])
    model.add_argument("--no-pretrained-text", dest="pretrained_text", action="store_false")
    model.add_argument("--no-pretrained-image", dest="pretrained_image", action="store_false")
    model.add_argument("--init-from", default=None, help="fine-tune this model folder or Hub repo")
    model.add_argument("--freeze-text", action="store_true")
    model.add_argument("--freeze-image", action="store_true")
    model.add_argument("--fusion-hidden", type=int, nargs="+", default=[512])
    model.add_argument("--dropout", type=float, default=0.3)
    model.add_argument("--modality-dropout", type=float, default=0.3)
    model.add_argument("--image-size", type=int, default=224, help="face crop side in pixels (new models only)")
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=5)
    opt.add_argument("--batch-size", type=int, default=16)
    opt.add_argument("--lr-head", type=float, default=1e-3)
    opt.add_argument("--lr-encoder", type=float, default=2e-5)
    opt.add_argument("--weight-decay", type=float, default=0.01)
    opt.add_argument("--warmup-ratio", type=float, default=0.1)
    opt.add_argument("--schedule", choices=["linear", "cosine", "constant"], default="linear")
    opt.add_argument("--grad-accum", type=int, default=1)
    opt.add_argument("--class-weights", action="store_true", help="weight the loss by inverse class frequency")
    opt.add_argument("--patience", type=int, default=3, help="early stop after this many epochs without gain")
    opt.add_argument("--seed", type=int, default=0)
    infra = parser.add_argument_group("infrastructure")
    infra.add_argument("--output-dir", type=Path, required=True)
    infra.add_argument("--resume", default=None, help="checkpoint folder, or 'latest' in --output-dir")
    infra.add_argument("--keep-checkpoints", type=int, default=2)
    infra.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no")
    infra.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    infra.add_argument("--num-workers", type=int, default=0)
    infra.add_argument("--log-with", choices=["tensorboard"], default=None)
    infra.add_argument("--push-to-hub", default=None, metavar="REPO", help="push the trained model to this repo")
    infra.add_argument("--private", action="store_true", help="create the Hub repo as private")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "grad_accum", "patience", "keep_checkpoints"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("validation_share", "test_share", "modality_dropout", "dropout", "warmup_ratio"):
        if not 0 <= getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be in [0, 1)")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    return config, args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    config, args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file otherwise
    try:
        metrics = train(config, args)
    except DataError as err:
        raise SystemExit(f"error: {err}") from None
    if args.push_to_hub:
        from fusion.hub import push_model_folder

        url = push_model_folder(args.output_dir, args.push_to_hub, private=args.private)
        print(f"Pushed to {url}")
    return metrics


if __name__ == "__main__":
    main()
