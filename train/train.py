"""Train or fine-tune the fusion model with Accelerate (CPU, one GPU, or `accelerate launch`).

    python -m train --data data.csv --output-dir runs/exp1 [--epochs 5] [--freeze-image] ...
    accelerate launch --num_processes 2 -m train --data ... --output-dir ...

Reads top to bottom: model and optimiser builders, one epoch, the loop (`train`), the final report, `main`.
Settings and their defaults live in `train/config.py`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import sys
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
from train.config import RunArgs, TrainConfig, parse_args
from train.data import DataError, load_sources, split_dataset
from train.evaluate import ablation, calibration, collect_logits
from train.feature_cache import FeatureCache, build_cache, cached_inputs
from train.loader import make_loader
from train.metrics import classification_metrics, fit_temperature
from train.report import confusion_png, write_json, write_model_card

logger = logging.getLogger("train")
AUX_LOSS_WEIGHT = 0.5  # the per-modality heads the app shows are trained beside the fused head
ARGS_FILE = "training_args.json"


def build_model(config: TrainConfig) -> tuple[EmotionFusionModel, Any]:
    """A fresh model from named encoders, or an existing model folder / repo to fine-tune."""
    if config.init_from:
        model, tokenizer = load_model_folder(resolve_model_source(config.init_from))
        model.set_frozen(text=config.freeze_text, image=config.freeze_image)
        model.modality_dropout = config.modality_dropout
    else:
        model, tokenizer = new_model(config)
    if config.freeze_word_embeddings:  # half of a small BERT's weights; fine-tuning barely moves them
        model.text.model.get_input_embeddings().requires_grad_(False)
    return model, tokenizer


def new_model(config: TrainConfig) -> tuple[EmotionFusionModel, Any]:
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
        preprocess={"image_size": config.image_size} if config.image_size else None,
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


def make_optimizer(model: EmotionFusionModel, config: TrainConfig, steps_per_epoch: int):
    from transformers import get_scheduler

    groups = param_groups(model, config)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, momentum=0.9, nesterov=True)
    else:
        optimizer = torch.optim.AdamW(groups)
    total_steps = max(1, steps_per_epoch * config.epochs)
    scheduler = get_scheduler(
        config.schedule if config.schedule != "constant" else "constant_with_warmup",
        optimizer,
        num_warmup_steps=int(config.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
    return optimizer, scheduler


def class_weight_tensor(labels: list[int], num_labels: int) -> torch.Tensor:
    counts = torch.bincount(torch.tensor(labels), minlength=num_labels).float()
    return counts.sum() / (num_labels * counts.clamp(min=1))


def loss_fn(out, labels: torch.Tensor, weight: torch.Tensor | None, smoothing: float = 0.0) -> torch.Tensor:
    loss = F.cross_entropy(out.logits.float(), labels, weight=weight, label_smoothing=smoothing)
    for logits, present in ((out.text_logits, out.text_present), (out.image_logits, out.image_present)):
        if present.any():
            aux = F.cross_entropy(logits[present].float(), labels[present], weight=weight, label_smoothing=smoothing)
            loss = loss + AUX_LOSS_WEIGHT * aux
    return loss


# ---------------------------------------------------------------------------------------------


@dataclass
class Progress:
    """What a checkpoint needs to continue: epochs done, best validation score, patience, history."""

    epoch: int = 0
    best_f1: float = -1.0
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def train_epoch(model, loader, optimizer, scheduler, accelerator: Accelerator, cache, loss, desc: str) -> dict:
    """One pass over the training data; `loss(outputs, labels)`; returns mean loss and throughput."""
    model.train()
    started, cpu_started, seen, total_loss = time.perf_counter(), time.process_time(), 0, 0.0
    bar = tqdm(loader, desc=desc, disable=not accelerator.is_local_main_process)
    for batch in bar:
        with accelerator.accumulate(model):
            value = loss(model(**cached_inputs(cache, batch)), batch["labels"])
            accelerator.backward(value)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        seen += len(batch["labels"])
        total_loss += value.detach().item() * len(batch["labels"])
        bar.set_postfix(loss=f"{total_loss / seen:.4f}")
    seconds = time.perf_counter() - started
    return {
        "train_loss": total_loss / max(seen, 1),
        "epoch_seconds": seconds,
        "cpu_seconds": time.process_time() - cpu_started,  # all threads of this process: what a CPU run costs
        "samples_per_second": seen * accelerator.num_processes / seconds,
    }


def frozen_feature_caches(
    model, prep: Preprocessor, splits, config: TrainConfig, accelerator
) -> dict[str, FeatureCache]:
    """Frozen towers are encoded once per split (eval preprocessing), so later epochs run only the rest."""
    if not (config.feature_cache and (config.freeze_text or config.freeze_image)):
        return {}
    caches = {
        split: build_cache(model, prep, splits[split], config.batch_size * 2, accelerator, split)
        for split in ("train", "validation")
        if split in splits
    }
    frozen = " and ".join(m for m, f in (("text", config.freeze_text), ("image", config.freeze_image)) if f)
    accelerator.print(
        f"Feature cache in use: frozen {frozen} encoder features computed once (no image augmentation for a "
        "frozen image encoder); later epochs run only the rest of the model."
    )
    return caches


def train(config: TrainConfig, run: RunArgs) -> dict[str, Any]:
    # A batch may lack a modality entirely (text-only data, modality dropout): DDP must allow unused weights.
    accelerator = Accelerator(
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        cpu=run.cpu,
        mixed_precision=run.mixed_precision,
        gradient_accumulation_steps=config.grad_accum,
        log_with=run.log_with,
        project_dir=str(run.output_dir),
    )
    set_seed(config.seed)
    out_dir = Path(run.output_dir)
    if accelerator.is_main_process:
        record_run(out_dir, config, run, {"status": "started"})

    with accelerator.main_process_first():
        by_split, report = load_sources(config.data, skip_bad=config.skip_bad, unreviewed_flags=config.unreviewed_flags)
        splits = split_dataset(by_split, config.seed, config.validation_share, config.test_share)
    sizes = {k: len(v) for k, v in splits.items()}
    accelerator.print(f"Data: {sizes} rows" + (f"; dropped {len(report.bad)} bad row(s)" if report.bad else ""))
    for note in report.notes:
        accelerator.print(note)

    model, tokenizer = build_model(config)
    train_prep = Preprocessor(model.preprocess_cfg, tokenizer, is_train=True, erasing=config.random_erasing)
    eval_prep = Preprocessor(model.preprocess_cfg, tokenizer, is_train=False)
    model.to(accelerator.device)
    started = time.perf_counter()
    cache = frozen_feature_caches(model, eval_prep, splits, config, accelerator)
    cache_seconds = time.perf_counter() - started
    train_loader = make_loader(
        splits["train"],
        train_prep,
        config.batch_size,
        shuffle=True,
        seed=config.seed,
        num_workers=run.num_workers,
        group_by_length=config.group_by_length,
        **_read(config, "train" in cache),
    )
    val_loader = make_loader(
        splits["validation"], eval_prep, config.batch_size * 2, **_read(config, "validation" in cache)
    )
    steps_per_epoch = math.ceil(len(train_loader) / (config.grad_accum * accelerator.num_processes))
    optimizer, scheduler = make_optimizer(model, config, steps_per_epoch)
    labels_order = model.labels  # read before prepare(): a DDP wrapper hides the model's attributes
    weight = class_weight_tensor(splits["train"]["label"], len(labels_order)) if config.class_weights else None
    weight = weight.to(accelerator.device) if weight is not None else None
    loss = lambda out, labels: loss_fn(out, labels, weight, config.label_smoothing)  # noqa: E731
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler
    )
    if run.log_with:
        accelerator.init_trackers("emotion-fusion", config=_flat(dataclasses.asdict(config)))
    progress = resume(accelerator, out_dir, run.resume) if run.resume else Progress()

    for epoch in range(progress.epoch, config.epochs):
        desc = f"epoch {epoch + 1}/{config.epochs}"
        record = {"epoch": epoch + 1}
        record |= train_epoch(model, train_loader, optimizer, scheduler, accelerator, cache.get("train"), loss, desc)
        logits, labels = collect_logits(model, val_loader, accelerator, "validation", cache.get("validation"))
        val = classification_metrics(logits, labels, labels_order)
        record |= {"val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"]}
        progress.history.append(record)
        accelerator.log({k: v for k, v in record.items() if k != "epoch"}, step=epoch + 1)
        accelerator.print(
            f"epoch {epoch + 1}: loss {record['train_loss']:.4f}, val acc {val['accuracy']:.3f}, "
            f"val macro-F1 {val['macro_f1']:.3f} ({record['epoch_seconds']:.1f}s)"
        )
        if val["macro_f1"] > progress.best_f1:
            progress.best_f1, progress.bad_epochs = val["macro_f1"], 0
            save_weights(accelerator, model, out_dir / "best")
        else:
            progress.bad_epochs += 1
        progress.epoch = epoch + 1
        checkpoint(accelerator, out_dir / "checkpoints" / f"epoch-{epoch + 1}", progress, run.keep_checkpoints)
        if progress.bad_epochs >= config.patience:
            accelerator.print(f"Early stop: no validation macro-F1 gain in {config.patience} epoch(s).")
            break

    model = load_best(accelerator, model, out_dir)
    metrics = final_metrics(model, eval_prep, splits, val_loader, cache, accelerator, config)
    metrics |= {"history": progress.history, "feature_cache_seconds": cache_seconds if cache else None}
    if accelerator.is_main_process:
        training = record_run(
            out_dir, config, run, {"status": "finished", "sizes": sizes, "epochs_run": progress.epoch}
        )
        save_outputs(out_dir, model, tokenizer, metrics, training)
        accelerator.print(f"Saved model, metrics and model card to {out_dir}")
    accelerator.end_training()
    return metrics


def _read(config: TrainConfig, cached: bool) -> dict[str, bool]:
    """Which raw modalities a loader must read: a frozen tower's cached features replace its input."""
    return {"use_images": not (config.freeze_image and cached), "use_texts": not (config.freeze_text and cached)}


# ---------------------------------------------------------------------------------------------


def load_best(accelerator: Accelerator, model, out_dir: Path) -> EmotionFusionModel:
    """The unwrapped model with the best epoch's weights, in eval mode."""
    accelerator.wait_for_everyone()
    model = accelerator.unwrap_model(model)
    best = out_dir / "best" / "model.safetensors"
    if best.is_file():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(best))  # copied onto the model's device
    return model.eval()


def final_metrics(model, eval_prep, splits, val_loader, cache, accelerator, config: TrainConfig) -> dict[str, Any]:
    """A temperature fitted on validation (saved in the model), then the ablation on the held-out split:
    the test split when there is one, else the validation split (which also chose the epoch and the
    temperature: `held_out_split` says which)."""
    logits, labels = collect_logits(model, val_loader, accelerator, "validation", cache.get("validation"))
    temperature = fit_temperature(logits, labels)
    model.set_temperature(temperature)
    held_out = "test" if "test" in splits else "validation"
    results, raw = ablation(model, eval_prep, splits[held_out], config.batch_size * 2, accelerator, model.labels)
    return {
        "validation": classification_metrics(logits, labels, model.labels),
        "test": results,
        "held_out_split": held_out,
        "calibration": calibration(*next(iter(raw.values())), temperature),
    }


def save_outputs(out_dir: Path, model, tokenizer, metrics: dict[str, Any], training: dict[str, Any]) -> None:
    """The served folder (config, weights, tokenizer) plus metrics.json, the confusion PNG and the model card."""
    save_model_folder(model, tokenizer, out_dir)
    write_json(out_dir / "metrics.json", metrics)
    first = next(iter(metrics["test"].values()), None)  # image+text where the data has both
    if first:
        confusion_png(first["confusion_matrix"], model.labels, out_dir / "confusion_matrix.png")
    write_model_card(out_dir, metrics, training)


def record_run(out_dir: Path, config: TrainConfig, run: RunArgs, facts: dict[str, Any]) -> dict[str, Any]:
    """training_args.json: written when a run starts (a crashed run leaves a record) and again when it ends."""
    training = {
        **dataclasses.asdict(config),
        **facts,
        "command": " ".join(sys.argv),
        "processes": run_processes(),
        "mixed_precision": run.mixed_precision,
        "base_models": _base_models(config),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / ARGS_FILE, training)
    return training


def run_processes() -> int:
    from accelerate.state import PartialState

    return PartialState().num_processes


def save_weights(accelerator: Accelerator, model, folder: Path) -> None:
    if accelerator.is_main_process:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in accelerator.unwrap_model(model).state_dict().items()}
        save_file(state, folder / "model.safetensors")


def checkpoint(accelerator: Accelerator, folder: Path, progress: Progress, keep: int) -> None:
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        write_json(folder / "progress.json", dataclasses.asdict(progress))
        old = sorted(folder.parent.glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))[:-keep]
        for stale in old:
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()


def resume(accelerator: Accelerator, out_dir: Path, which: str) -> Progress:
    checkpoints = out_dir / "checkpoints"
    if which == "latest":
        found = sorted(checkpoints.glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))
        folder = found[-1] if found else None
    else:
        folder = Path(which)
    if folder is None or not folder.is_dir():
        raise SystemExit(f"error: no checkpoint to resume from at {which} (looked in {checkpoints}).")
    accelerator.load_state(str(folder))
    progress = Progress(**json.loads((folder / "progress.json").read_text()))
    accelerator.print(f"Resumed from {folder} after epoch {progress.epoch}")
    return progress


def _base_models(config: TrainConfig) -> list[str]:
    if config.init_from:
        return [config.init_from]
    return [config.text_encoder] if config.pretrained_text and "/" in config.text_encoder else []


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    """Trackers accept scalars only."""
    return {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in data.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    config, run = parse_args(argv, description=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file otherwise
    try:
        metrics = train(config, run)
    except DataError as err:
        raise SystemExit(f"error: {err}") from None
    if run.push_to_hub:
        from fusion.hub import push_model_folder

        url = push_model_folder(run.output_dir, run.push_to_hub, private=run.private)
        print(f"Pushed to {url}")
    return metrics


if __name__ == "__main__":
    main()
