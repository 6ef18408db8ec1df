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
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from tqdm.auto import tqdm

from fusion.hub import load_model_folder, resolve_model_source
from fusion.model import EmotionFusionModel, create_model
from fusion.preprocess import Preprocessor
from train.branch import grow_text_branch
from train.checkpoints import Progress, checkpoint, load_best, resume, save_weights
from train.config import RunArgs, TrainConfig, parse_args
from train.data import DataError, load_sources, split_dataset
from train.evaluate import by_source, collect_logits, has, mean_source_macro_f1, rows_with
from train.feature_cache import FeatureCache, build_cache, cached_inputs
from train.finish import final_metrics, record_run, save_outputs
from train.loader import label_order, make_loader
from train.loss import class_weight_tensor, loss_fn, soft_cross_entropy
from train.metrics import classification_metrics
from train.sources import fixed_shares

logger = logging.getLogger("train")


def build_model(config: TrainConfig) -> tuple[EmotionFusionModel, Any]:
    """A fresh model from named encoders, or an existing model folder / repo to fine-tune."""
    if config.init_from:
        model, tokenizer = load_model_folder(resolve_model_source(config.init_from))
        model.set_frozen(text=config.freeze_text, image=config.freeze_image)
        model.modality_dropout = config.modality_dropout
        if config.text_branch_at is not None:
            model = grow_text_branch(model, config.text_branch_at)
    elif config.text_branch_at is not None:
        raise ValueError("--text-branch-at grows a branch on a trained text model: give it --init-from.")
    else:
        model, tokenizer = new_model(config)
    if config.freeze_word_embeddings and model.text is not None:  # half of a small BERT's weights
        model.text.model.get_input_embeddings().requires_grad_(False)
    return model, tokenizer


def new_model(config: TrainConfig) -> tuple[EmotionFusionModel, Any]:
    model = create_model(
        config.text_encoder,
        config.image_encoder,
        pretrained_text=config.pretrained_text,
        pretrained_image=config.pretrained_image,
        fusion=config.fusion,
        fusion_hidden=config.fusion_hidden,
        dropout=config.dropout,
        freeze_text=config.freeze_text,
        freeze_image=config.freeze_image,
        modality_dropout=config.modality_dropout,
        preprocess={"image_size": config.image_size} if config.image_size else None,
    )
    return model, model.tokenizer  # create_model gives every model one (a text-free one the packaged MiniLM's)


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


# ---------------------------------------------------------------------------------------------


def train_epoch(model, loader, optimizer, scheduler, accelerator: Accelerator, cache, loss, desc: str) -> dict:
    """One pass over the training data; `loss(outputs, batch)`; returns mean loss and throughput."""
    model.train()
    started, cpu_started, seen, total_loss = time.perf_counter(), time.process_time(), 0, 0.0
    bar = tqdm(loader, desc=desc, disable=not accelerator.is_local_main_process)
    for batch in bar:
        with accelerator.accumulate(model):
            value = loss(model(**cached_inputs(cache, batch)), batch)
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


def usable_rows(splits, model, accelerator):
    """Rows with a modality the model reads (a face-only model skips text-only rows); the rest are counted."""
    image, text = has(model, "image"), has(model, "text")
    if image and text:
        return splits
    kept = {name: rows_with(ds, image, text) for name, ds in splits.items()}
    dropped = {name: len(splits[name]) - len(ds) for name, ds in kept.items() if len(ds) < len(splits[name])}
    if dropped:
        accelerator.print(
            f"Left out rows with no {'image' if image else 'text'} (this model reads no other): {dropped}"
        )
    return type(splits)(kept)


def validation_score(collected, labels, sources, source_labels, config: TrainConfig) -> dict[str, float]:
    """Validation accuracy, macro-F1, loss against the targets, and the score that picks the epoch (higher wins)."""
    val = classification_metrics(collected.logits, collected.labels, labels)
    loss = float(soft_cross_entropy(collected.logits, collected.targets, collected.label_mask))
    record = {"val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"], "val_loss": loss}
    if config.select_by == "source_macro_f1":
        per_source = by_source(collected, labels, sources, source_labels)
        record["val_source_macro_f1"] = mean_source_macro_f1(per_source)
        record |= {f"val_macro_f1[{name}]": r["macro_f1"] for name, r in per_source.items()}
    record["score"] = -loss if config.select_by == "loss" else record[f"val_{config.select_by}"]
    return record


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
        by_split, report = load_sources(config.data, skip_bad=config.skip_bad, unreviewed_flags=config.unreviewed_flags,
                                        cache_dir=out_dir / "teacher_targets")  # fmt: skip
        splits = split_dataset(by_split, config.seed, config.validation_share, config.test_share)
    model, tokenizer = build_model(config)
    splits = usable_rows(splits, model, accelerator)
    sizes = {k: len(v) for k, v in splits.items()}
    accelerator.print(f"Data: {sizes} rows" + (f"; dropped {len(report.bad)} bad row(s)" if report.bad else ""))
    for note in report.notes:
        accelerator.print(note)
    labels_order = model.labels  # read before prepare(): a DDP wrapper hides the model's attributes
    label_order(labels_order)  # the model's labels must be emotions the data knows
    train_prep = Preprocessor(
        model.preprocess_cfg,
        tokenizer,
        is_train=True,
        erasing=config.random_erasing,
        augment=config.augment,
        surround=config.surround,
    )
    eval_prep = Preprocessor(model.preprocess_cfg, tokenizer, is_train=False)
    model.to(accelerator.device)
    started = time.perf_counter()
    cache = frozen_feature_caches(model, eval_prep, splits, config, accelerator)
    cache_seconds = time.perf_counter() - started
    reads = {"use_images": has(model, "image"), "use_texts": has(model, "text"), "labels": labels_order}
    train_loader = make_loader(
        splits["train"],
        train_prep,
        config.batch_size,
        shuffle=True,
        seed=config.seed,
        num_workers=run.num_workers,
        group_by_length=config.group_by_length,
        source_temperature=config.source_temperature,
        epoch_rows=config.epoch_rows,
        shares=fixed_shares(config.data),
        **(reads | _read(config, "train" in cache)),
    )
    val_loader = make_loader(
        splits["validation"], eval_prep, config.batch_size * 2, **(reads | _read(config, "validation" in cache))
    )
    sources = val_loader.dataset.source_ids
    steps_per_epoch = math.ceil(len(train_loader) / (config.grad_accum * accelerator.num_processes))
    optimizer, scheduler = make_optimizer(model, config, steps_per_epoch)
    weight = None
    if config.class_weights:
        weight = class_weight_tensor(torch.tensor(splits["train"]["target"])[:, label_order(labels_order)])
        weight = weight.to(accelerator.device)
    loss = lambda out, batch: loss_fn(out, batch, weight, config.label_smoothing)  # noqa: E731
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
        collected = collect_logits(model, val_loader, accelerator, "validation", cache.get("validation"))
        record |= validation_score(collected, labels_order, sources, report.labels, config)
        progress.history.append(record)
        accelerator.log({k: v for k, v in record.items() if k != "epoch"}, step=epoch + 1)
        accelerator.print(
            f"epoch {epoch + 1}: loss {record['train_loss']:.4f}, val acc {record['val_accuracy']:.3f}, "
            f"val macro-F1 {record['val_macro_f1']:.3f}, selection score {record['score']:.3f} "
            f"({record['epoch_seconds']:.1f}s)"
        )
        if record["score"] > progress.best_f1:
            progress.best_f1, progress.bad_epochs = record["score"], 0
            save_weights(accelerator, model, out_dir / "best")
        else:
            progress.bad_epochs += 1
        progress.epoch = epoch + 1
        checkpoint(accelerator, out_dir / "checkpoints" / f"epoch-{epoch + 1}", progress, run.keep_checkpoints)
        if progress.bad_epochs >= config.patience:
            accelerator.print(f"Early stop: no validation gain in {config.patience} epoch(s).")
            break

    model = load_best(accelerator, model, out_dir)
    metrics = final_metrics(model, eval_prep, splits, val_loader, cache, accelerator, config, report.labels)
    metrics |= {"history": progress.history, "feature_cache_seconds": cache_seconds if cache else None,
                "source_labels": report.labels, "data_notes": report.notes}  # fmt: skip
    if accelerator.is_main_process:
        facts = {"status": "finished", "sizes": sizes, "epochs_run": progress.epoch,
                 "cpu_seconds": sum(h["cpu_seconds"] for h in progress.history)}  # fmt: skip
        training = record_run(out_dir, config, run, facts)
        if config.int8_calibration and has(model, "image"):
            write_int8_calibration(model, tokenizer, splits["train"], config.int8_calibration, out_dir)
        save_outputs(out_dir, model, tokenizer, metrics, training)
        accelerator.print(f"Saved model, metrics and model card to {out_dir}")
    accelerator.end_training()
    return metrics


def _read(config: TrainConfig, cached: bool) -> dict[str, bool]:
    """Which raw modalities a loader must not read: a frozen tower's cached features replace its input."""
    skip = {}
    if config.freeze_image and cached:
        skip["use_images"] = False
    if config.freeze_text and cached:
        skip["use_texts"] = False
    return skip


def write_int8_calibration(model, tokenizer, rows, images: int, out_dir: Path) -> None:
    """The CNN's activation ranges on `images` training images (shuffled, seed 0), for int8 serving."""
    from fusion.quantize import CALIBRATION_FILE, calibrate_on_rows

    stats = calibrate_on_rows(model, tokenizer, rows_with(rows, image=True, text=False), images)
    (out_dir / CALIBRATION_FILE).write_text(json.dumps({**stats, "data": f"training images ({stats['images']}, seed 0)"},
                                                       indent=1) + "\n")  # fmt: skip


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
        from train.export import push_model_folder

        url = push_model_folder(run.output_dir, run.push_to_hub, private=run.private)
        print(f"Pushed to {url}")
    return metrics


if __name__ == "__main__":
    main()
