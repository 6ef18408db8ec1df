"""After the epochs: the best epoch's model calibrated and chosen on validation, scored, and written out.

On the validation split only: test-time augmentation (`--tta auto`), post-hoc logit adjustment for class
skew (`--logit-adjustment`), then the temperature (each row's softmax over its source's labels, soft
targets as in training). Then the held-out ablation (the test split when there is one, else validation),
scores per source, and the model folder with metrics.json, the confusion PNG and the model card.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from fusion.encoders import TTA_MODES
from train.config import RunArgs, TrainConfig
from train.evaluate import (
    Collected,
    ablation,
    by_source,
    calibration,
    collect_logits,
    has,
    mean_source_macro_f1,
    rows_with,
)
from train.export import save_model_folder
from train.loader import make_loader
from train.metrics import choose_logit_adjustment, classification_metrics
from train.report import confusion_png, evaluation_rows, write_json, write_model_card

ARGS_FILE = "training_args.json"
TTA_TIE = 0.002  # a costlier test-time augmentation must beat a cheaper one by more than this accuracy


def choose_tta(model, prep, validation, config: TrainConfig, accelerator) -> dict[str, float]:
    """The image tower's test-time augmentation with the best validation accuracy (the cheaper on a near tie)."""
    rows = rows_with(validation, image=True, text=False)
    loader = accelerator.prepare(make_loader(rows, prep, config.batch_size * 2, use_texts=False, labels=model.labels))
    accuracy = {}
    for mode in TTA_MODES:
        model.set_tta(mode)
        got = collect_logits(model, loader, accelerator, f"validation (tta {mode})", output="image_logits")
        accuracy[mode] = classification_metrics(got.logits, got.labels, model.labels)["accuracy"]
    model.set_tta(max(TTA_MODES, key=lambda m: accuracy[m] - TTA_TIE * TTA_MODES.index(m)))
    return accuracy


def calibrate(
    model, prep, splits, val_loader, cache, config: TrainConfig, accelerator, source_labels
) -> tuple[Collected, dict]:
    """TTA, logit adjustment and temperature, each chosen on validation; returns the final validation logits."""
    facts: dict[str, Any] = {}
    if config.tta == "auto" and has(model, "image"):
        facts["validation_accuracy_by_tta"] = choose_tta(model, prep, splits["validation"], config, accelerator)
        cache = {k: v for k, v in cache.items() if v.image is None}  # cached image features saw no augmentation
    elif config.tta != "auto" and has(model, "image"):
        model.set_tta(config.tta)
    if has(model, "image"):
        facts["tta"] = model.image.tta
    collected = collect_logits(model, val_loader, accelerator, "validation", cache.get("validation"))
    if config.logit_adjustment:
        prior = training_prior(splits["train"], config)[_order(model)]
        ids = val_loader.dataset.source_ids if hasattr(val_loader, "dataset") else {}
        score = adjustment_score(collected, model.labels, ids, source_labels, config)
        tau, report = choose_logit_adjustment(collected.logits, collected.labels, prior, score=score)
        shift = (-tau * torch.log(prior.clamp(min=1e-12))).float()
        model.shift_logits(shift)
        collected.logits = collected.logits + shift
        facts["logit_adjustment"] = {"tau": tau, **report, "prior": dict(zip(model.labels, prior.tolist()))}
    model.set_temperature(collected.fit_temperature())
    return collected, facts


def adjustment_score(collected: Collected, names, ids: dict[str, int], source_labels, config: TrainConfig):
    """What the logit adjustment's tau maximises (None: macro-F1 over all validation rows): mean per-class recall
    on one class-balanced source's rows (`--adjust-on`), or the mean of each source's macro-F1."""
    if config.adjust_on:
        chosen = [i for name, i in ids.items() if config.adjust_on in name]
        if not chosen:
            raise ValueError(f"--adjust-on {config.adjust_on!r} names no validation source; they are {sorted(ids)}.")

        def balanced(adjusted: torch.Tensor, rows: torch.Tensor) -> float:
            """mean per-class recall on the class-balanced source's validation rows"""
            keep = torch.isin(collected.source[rows], torch.tensor(chosen))
            return classification_metrics(adjusted[keep], collected.labels[rows][keep], names)["mean_recall"]

        return balanced
    if config.select_by == "source_macro_f1":

        def per_source(adjusted: torch.Tensor, rows: torch.Tensor) -> float:
            """the mean of each source's validation macro-F1"""
            part = dataclasses.replace(collected.select(rows), logits=adjusted)
            return mean_source_macro_f1(by_source(part, names, ids, source_labels))

        return per_source
    return None


def training_prior(train, config: TrainConfig) -> torch.Tensor:
    """The label distribution training saw, for logit adjustment: the distribution that best explains the training
    targets when each row could only give the labels in its mask (the same masked softmax as the loss), each row
    weighted by its source's loss weight and its source's share of an epoch. A corpus without "neutral" thus tells
    how its other labels compare with each other, never that neutral is rare (counting its rows as if it could give
    neutral would make neutral look rarer and the adjustment raise it)."""
    from collections import Counter

    from train.loader import source_shares
    from train.sources import fixed_shares

    names = train["source"]
    counts, shares = Counter(names), source_shares(names, config.source_temperature, fixed_shares(config.data))
    weight = torch.tensor([shares[n] / counts[n] for n in names], dtype=torch.float64)
    weight = weight * torch.tensor(train["weight"], dtype=torch.float64)
    return masked_prior(torch.tensor(train["target"], dtype=torch.float64) * weight[:, None],
                        torch.tensor(train["label_mask"], dtype=torch.bool))  # fmt: skip


def masked_prior(mass: torch.Tensor, mask: torch.Tensor, steps: int = 2000) -> torch.Tensor:
    """argmax_p sum_rows mass_row . log(p / p[mask_row].sum()): the maximum-likelihood prior when each row's
    (weighted) target mass was drawn from p restricted to the row's labels, by its fixed-point (minorise-maximise)
    iteration p_k = mass_k / sum_rows total_row [k in mask_row] / p[mask_row].sum(). With every label in every
    mask it is the mean target. A label with no mass counts as rare as the rarest seen (a zero prior would shift
    its logit without bound)."""
    groups: dict[tuple[bool, ...], torch.Tensor] = {}
    for row_mass, row_mask in zip(mass, mask, strict=True):  # rows sharing a mask add up
        key = tuple(row_mask.tolist())
        groups[key] = groups.get(key, 0) + row_mass.double()
    totals = torch.stack(list(groups.values()))
    seen = totals.sum(0) > 0
    masks = torch.tensor(list(groups), dtype=torch.float64)[:, seen]
    counts, row_totals = totals[:, seen].sum(0), totals.sum(1)
    fitted = counts / counts.sum()
    for _ in range(steps):
        updated = counts / (masks * (row_totals / (masks @ fitted))[:, None]).sum(0)
        updated = updated / updated.sum()
        done = torch.allclose(updated, fitted, rtol=0, atol=1e-15)
        fitted = updated
        if done:
            break
    prior = torch.full((len(seen),), float(fitted.min()), dtype=torch.float64)
    prior[seen] = fitted
    return prior / prior.sum()


def _order(model) -> list[int]:
    from train.loader import label_order

    return label_order(model.labels)


def final_metrics(model, prep, splits, val_loader, cache, accelerator, config: TrainConfig, source_labels) -> dict:
    """Calibration on validation, then the ablation and per-source scores on the held-out split: the test split
    when there is one, else the validation split (which also chose the epoch and the calibration:
    `held_out_split` says which)."""
    collected, facts = calibrate(model, prep, splits, val_loader, cache, config, accelerator, source_labels)
    held_out = "test" if "test" in splits else "validation"
    results, raw = ablation(model, prep, splits[held_out], config.batch_size * 2, accelerator, model.labels)
    first = next(iter(raw.values()))
    sources = make_loader(splits[held_out], prep, 1).dataset.source_ids
    per_source = by_source(_scaled(raw.get("image+text", first), model), model.labels, sources, source_labels)
    metrics = {
        "validation": classification_metrics(collected.logits, collected.labels, model.labels),
        "test": results,
        "held_out_split": held_out,
        "by_source": per_source,
        "calibration": {**calibration(first, float(model.temperature)), **facts},
    }
    metrics["evaluations"] = evaluation_rows(metrics)
    return metrics


def _scaled(collected: Collected, model) -> Collected:
    """The logits the predictor serves (divided by the fitted temperature), for calibration scores."""
    return dataclasses.replace(collected, logits=collected.logits / float(model.temperature))


def save_outputs(out_dir: Path, model, tokenizer, metrics: dict[str, Any], training: dict[str, Any]) -> None:
    """The served folder (config, weights, tokenizer) plus metrics.json, the confusion PNG and the model card."""
    save_model_folder(model, tokenizer, out_dir)
    write_json(out_dir / "metrics.json", metrics)
    first = next(iter(metrics["test"].values()), None)  # image+text where the data has both
    if first:
        confusion_png(first["confusion_matrix"], model.labels, out_dir / "confusion_matrix.png")
    write_model_card(out_dir, metrics, [training], model=model)


def _command() -> str:
    """How this run was started, as a user types it (`python -m train ...`), without this machine's paths."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    head = f"python -m {spec.name.removesuffix('.__main__')}" if spec else f"python {os.path.relpath(sys.argv[0])}"
    return " ".join([head, *sys.argv[1:]])


def record_run(out_dir: Path, config: TrainConfig, run: RunArgs, facts: dict[str, Any]) -> dict[str, Any]:
    """training_args.json: written when a run starts (a crashed run leaves a record) and again when it ends."""
    training = {
        **dataclasses.asdict(config),
        **facts,
        "command": _command(),
        "processes": _processes(),
        "mixed_precision": run.mixed_precision,
        "base_models": _base_models(config),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / ARGS_FILE, training)
    return training


def _processes() -> int:
    from accelerate.state import PartialState

    return PartialState().num_processes


def _base_models(config: TrainConfig) -> list[str]:
    """Hub models the run started from; a local run folder it continues stands for the models that run started from."""
    if config.init_from and (Path(config.init_from) / ARGS_FILE).is_file():
        return json.loads((Path(config.init_from) / ARGS_FILE).read_text()).get("base_models", [])
    if config.init_from:
        return [config.init_from]
    return [config.text_encoder] if config.pretrained_text and "/" in config.text_encoder else []
