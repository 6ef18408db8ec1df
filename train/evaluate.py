"""Evaluate a model on any data source: accuracy, macro-F1, per-class scores, calibration, ablation.

    python -m train.evaluate --model FOLDER_OR_REPO --data SOURCE [--data SOURCE ...] [--out metrics.json]

The ablation scores the same rows three ways: both modalities, image only (rows with an image),
text only (rows with a text).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, concatenate_datasets
from datasets import Image as ImageFeature
from tqdm.auto import tqdm

from fusion.preprocess import Preprocessor
from train.feature_cache import FeatureCache, cached_inputs
from train.loader import make_loader
from train.metrics import classification_metrics, expected_calibration_error, fit_temperature
from train.report import print_table, write_json

logger = logging.getLogger(__name__)
MODES = {"image+text": (True, True), "image only": (True, False), "text only": (False, True)}
KEPT = ("labels", "targets", "label_mask", "source")  # what a batch says about its rows, kept beside the logits


@dataclass
class Collected:
    """Logits over a loader's rows, with what the rows are: hard labels, targets, label masks, source ids."""

    logits: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor
    label_mask: torch.Tensor
    source: torch.Tensor

    def select(self, rows: torch.Tensor) -> Collected:
        return Collected(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))

    def fit_temperature(self) -> float:
        """On the soft targets, each row's softmax over its source's labels (as in training)."""
        return fit_temperature(self.logits, self.targets, self.label_mask)


@torch.inference_mode()
def collect_logits(
    model, loader, accelerator=None, desc: str = "evaluate", cache: FeatureCache | None = None, output: str = "logits"
) -> Collected:
    """Logits (fused, or `output="image_logits"`/`"text_logits"`: one branch's head) over a loader, with the
    rows' labels and targets, gathered across processes when `accelerator` is given."""
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {"logits": [], **{k: [] for k in KEPT}}
    show = accelerator is None or accelerator.is_local_main_process
    for batch in tqdm(loader, desc=desc, leave=False, disable=not show):
        values = {
            "logits": getattr(model(**cached_inputs(cache, batch)), output).float(),
            **{k: batch[k] for k in KEPT},
        }
        if accelerator is not None:
            values = accelerator.gather_for_metrics(values)
        for key, value in values.items():
            parts[key].append(value.cpu())
    if not parts["logits"]:
        empty = torch.zeros(0, len(getattr(model, "module", model).labels))
        return Collected(empty, torch.zeros(0, dtype=torch.long), empty, empty.bool(), torch.zeros(0, dtype=torch.long))
    return Collected(*(torch.cat(parts[key]) for key in ("logits", *KEPT)))


def by_source(
    collected: Collected, names: list[str], sources: dict[str, int], source_labels: dict[str, list[str]]
) -> dict[str, dict[str, Any]]:
    """Scores per source (argmax over all labels; macro-F1 over the source's own labels) and their calibration."""
    results = {}
    for name, index in sources.items():
        rows = (collected.source == index).nonzero().squeeze(1)
        if len(rows):
            part = collected.select(rows)
            results[name] = {
                **classification_metrics(part.logits, part.labels, names, source_labels.get(name)),
                "ece": expected_calibration_error(part.logits, part.labels),
                "labels": source_labels.get(name, names),
            }
    return results


def mean_source_macro_f1(results: dict[str, dict[str, Any]]) -> float:
    """Model selection across corpora: each corpus counts once, whatever its size."""
    return sum(r["macro_f1"] for r in results.values()) / max(len(results), 1)


def rows_with(ds: Dataset, image: bool, text: bool) -> Dataset:
    """The rows that carry the modalities a mode uses (image+text: rows with either; none: no rows)."""
    if image and text:
        return ds
    if image:
        flags = [v is not None for v in ds.cast_column("image", ImageFeature(decode=False))["image"]]
    elif text:
        flags = [bool(t and t.strip()) for t in ds["text"]]
    else:
        flags = [False] * len(ds)
    return ds.select([i for i, keep in enumerate(flags) if keep])


def ablation(
    model,
    preprocessor: Preprocessor,
    ds: Dataset,
    batch_size: int = 32,
    accelerator=None,
    labels: list[str] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Metrics for each of `MODES` (skipping modes with no rows), and the logits behind them."""
    names = labels or list(model.labels)
    results, raw = {}, {}
    for mode, (use_images, use_texts) in MODES.items():
        rows = rows_with(ds, use_images and has(model, "image"), use_texts and has(model, "text"))
        if not len(rows) or (use_images and use_texts and not (has(model, "image") and has(model, "text"))):
            continue
        loader = make_loader(rows, preprocessor, batch_size, shuffle=False, use_images=use_images,
                             use_texts=use_texts, labels=names)  # fmt: skip
        if accelerator is not None:
            loader = accelerator.prepare(loader)
        collected = collect_logits(model, loader, accelerator, desc=f"evaluate ({mode})")
        results[mode] = classification_metrics(collected.logits, collected.labels, names)
        raw[mode] = collected
    return results, raw


def has(model, modality: str) -> bool:
    """Whether a (possibly wrapped) model has a tower for `modality`."""
    return getattr(getattr(model, "module", model), modality) is not None


def calibration(collected: Collected, temperature: float) -> dict[str, float]:
    return {
        "temperature": float(temperature),
        "ece_before": expected_calibration_error(collected.logits, collected.labels, 1.0),
        "ece_after": expected_calibration_error(collected.logits, collected.labels, temperature),
    }


def evaluate_source(
    model, tokenizer, specs: list[str], split: str | None, batch_size: int, skip_bad: bool
) -> dict[str, Any]:
    from train.data import load_sources

    by_split, report = load_sources(specs, skip_bad=skip_bad)
    chosen = split or ("test" if "test" in by_split else "all")
    if chosen == "all":
        ds = concatenate_datasets(list(by_split.values()))
    elif chosen in by_split:
        ds = by_split[chosen]
    else:
        raise SystemExit(f"No split {chosen!r} in {specs}; it has {sorted(by_split)}.")
    preprocessor = Preprocessor(model.preprocess_cfg, tokenizer, is_train=False)
    results, raw = ablation(model, preprocessor, ds, batch_size)
    if not raw:
        raise SystemExit(f"Nothing in {specs} is a modality this model reads.")
    first = next(iter(raw.values()))
    return {
        "data": specs,
        "split": chosen,
        "skipped_bad_rows": len(report.bad),
        "test": results,
        "calibration": calibration(first, float(model.temperature)),
        "temperature_fitted_here": first.fit_temperature(),
    }


def print_summary(metrics: dict[str, Any]) -> None:
    rows = [
        {"input": mode, "n": r["n"], "accuracy": r["accuracy"], "macro-F1": r["macro_f1"]}
        for mode, r in metrics["test"].items()
    ]
    print_table(rows, ["input", "n", "accuracy", "macro-F1"])
    cal = metrics.get("calibration")
    if cal:
        print(f"ECE {cal['ece_before']:.3f} at T=1, {cal['ece_after']:.3f} at the model's T={cal['temperature']:.3f}")
    first = next(iter(metrics["test"].values()))
    print(
        "per class (first row):",
        ", ".join(f"{k} F1 {v['f1']:.2f} (n={v['support']})" for k, v in first["per_class"].items()),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder or Hub repo id")
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    parser.add_argument("--data", action="append", required=True, help="data source (repeatable); see train.data")
    parser.add_argument("--split", default=None, help="split to score (default: test if the source has one, else all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-bad", action="store_true", help="drop bad rows instead of stopping")
    parser.add_argument("--out", type=Path, default=None, help="write the metrics JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from fusion.hub import load_model_folder, resolve_model_source
    from train.data import DataError

    model, tokenizer = load_model_folder(resolve_model_source(args.model, revision=args.revision))
    try:
        metrics = evaluate_source(model, tokenizer, args.data, args.split, args.batch_size, args.skip_bad)
    except DataError as err:
        raise SystemExit(f"error: {err}") from None
    metrics["model"] = args.model
    print_summary(metrics)
    if args.out:
        write_json(args.out, metrics)
        print(f"Wrote {args.out}")
    return metrics


if __name__ == "__main__":
    main()
