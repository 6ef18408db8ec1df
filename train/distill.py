"""Distillation targets: a finished model (the teacher) labels a source's training rows (`#teacher=FOLDER`).

Each training row's target becomes `(1 - A) * its own target + A * softmax(teacher logits / T)`, the teacher's
served logits (its fitted temperature applied) softened by T and limited to the source's labels. A student then
learns what the teacher knows about that source (its doubt between labels too) while it learns the rest of its
data. The teacher runs once per (teacher, rows): its log-probabilities are cached in `cache_dir` (a training
run keeps them in its output folder, so `--resume` does not run the teacher again).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from fusion.labels import EMOTIONS
from train.sources import SourceError, SourceSpec

BATCH = 64


def with_teacher(
    rows: list[dict[str, Any]], spec: SourceSpec, mask: list[bool], cache_dir: Path | None = None
) -> list[dict[str, Any]]:
    """`rows` (normalised: text and a target over the 7 emotions) with the teacher's share mixed into each target;
    rows without a text (nothing for a text teacher to read) keep theirs."""
    texted = [i for i, row in enumerate(rows) if row["text"]]
    log_probs = teacher_log_probs(Path(spec.teacher), [rows[i]["text"] for i in texted], cache_dir)
    allowed = torch.tensor(mask)
    soft = torch.softmax((log_probs / spec.distill_temperature).masked_fill(~allowed, float("-inf")), dim=-1)
    for i, probs in zip(texted, soft.tolist(), strict=True):
        own = rows[i]["target"]
        rows[i] = {**rows[i], "target": [(1 - spec.distill) * t + spec.distill * p for t, p in zip(own, probs)]}
    return rows


def teacher_log_probs(folder: Path, texts: list[str], cache_dir: Path | None = None) -> torch.Tensor:
    """The log-probabilities the model in `folder` serves for `texts` (N x 7, in `EMOTIONS` order; an emotion the
    model lacks gets ~0), from `cache_dir` when it holds them for this model and these texts."""
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        raise SourceError(f"Teacher {folder} is not a finished model folder (config.json, model.safetensors).")
    cached = cache_dir / f"teacher-{cache_key(folder, texts)}.safetensors" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        return load_file(str(cached))["log_probs"]
    log_probs = _run_teacher(folder, texts)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        save_file({"log_probs": log_probs.contiguous()}, str(partial), metadata={"teacher": str(folder)})
        partial.replace(cached)  # a crash mid-write leaves no half cache behind
    return log_probs


def cache_key(folder: Path, texts: list[str]) -> str:
    """A digest of the teacher's weights and config and of the texts, in order."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with (folder / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:20]


@torch.inference_mode()
def _run_teacher(folder: Path, texts: list[str]) -> torch.Tensor:
    from fusion.predictor import EmotionPredictor

    predictor = EmotionPredictor.load(folder)
    if not predictor.model.has("text"):
        raise SourceError(f"Teacher {folder} has no text branch to label texts with.")
    columns = [predictor.labels.index(name) if name in predictor.labels else None for name in EMOTIONS]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch with little padding
    out = torch.full((len(texts), len(EMOTIONS)), -30.0)
    temperature = float(predictor.model.temperature)
    for start in tqdm(range(0, len(order), BATCH), desc=f"teacher {folder.name}", leave=False):
        rows = order[start : start + BATCH]
        batch = predictor.preprocessor.collate([None] * len(rows), [texts[i] for i in rows])
        batch = {k: v.to(predictor.device) for k, v in batch.items() if v is not None}
        served = torch.log_softmax(predictor.model(**batch).logits.float() / temperature, dim=-1).cpu()
        for j, column in enumerate(columns):
            if column is not None:
                out[rows, j] = served[:, column]
    return out
