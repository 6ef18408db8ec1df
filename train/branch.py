"""A second text path beside a trained text branch, and both paths' answers on the dev splits.

`grow_text_branch` gives a text model's tower a branch: a copy of its encoder's layers from `at` up, fed by the
shared lower layers (`fusion.encoders.TextTower`); the head reads both paths and starts as the model's own
answer. Trained on one corpus (`python -m train --init-from MIX --text-branch-at 3`), the branch specialises
while the shared encoder and the first path stay as they were.

Both heads are linear in the same normalised features, so a weighted sum of the two calibrated heads serves
exactly the log-linear pool (a weighted product) of the two answers: `train.route` serves a pool per kind of
text; `dev_logits` gives both models' calibrated logits on the dev rows (`bench/pool_grid.py`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fusion.model import EmotionFusionModel

SHARED = ("text.model.", "text_embed.norm.")  # what the branched model must have kept of the first one


@torch.no_grad()
def grow_text_branch(model: EmotionFusionModel, at: int) -> EmotionFusionModel:
    """`model` with a text branch from encoder layer `at`; it answers exactly as `model` until trained."""
    if model.text is None or model.text.branch is not None or model.fusion != "logits":
        raise ValueError("A text branch grows from a logit-fusion model whose text tower has none yet.")
    config = dict(model.config)
    config["text_encoder"] = {**config["text_encoder"], "branch_at": at}
    grown = EmotionFusionModel(**config)
    state = grown.state_dict()
    state.update({k: v for k, v in model.state_dict().items() if k in state and state[k].shape == v.shape})
    for i in range(len(grown.text.branch)):
        prefix = f"text.model.encoder.layer.{at + i}."
        state.update({f"text.branch.{i}.{k[len(prefix):]}": v for k, v in model.state_dict().items()
                      if k.startswith(prefix)})  # fmt: skip
    if grown.text_embed.branch_norm is not None:
        state.update({f"text_embed.branch_norm.{k}": v for k, v in model.text_embed.norm.state_dict().items()})
    state["text_embed.placeholder"] = model.text_embed.placeholder.repeat(2)
    state["text_head.weight"] = torch.cat([model.text_head.weight, torch.zeros_like(model.text_head.weight)], 1)
    grown.load_state_dict(state, strict=True)
    grown.tokenizer = model.tokenizer
    grown.set_temperature(float(model.temperature))
    grown.text_embed.norm.requires_grad_(False)  # shared with the first path, like the encoder
    return grown.train(model.training)


def calibrated_head(model: EmotionFusionModel) -> tuple[torch.Tensor, torch.Tensor]:
    """The text head's weight and bias divided by the model's temperature (what its predictor serves)."""
    temperature = float(model.temperature)
    return model.text_head.weight / temperature, model.text_head.bias / temperature


def check_shared(first: EmotionFusionModel, branched: EmotionFusionModel) -> None:
    """The branched model must read the first model's features: same encoder, same normalisation."""
    if branched.text is None or branched.text.branch is None:
        raise ValueError("The second model has no text branch (grow one with --text-branch-at).")
    ours, theirs = first.state_dict(), branched.state_dict()
    differ = [k for k in ours if k.startswith(SHARED) and (k not in theirs or not torch.equal(ours[k], theirs[k]))]
    if differ or first.labels != branched.labels:
        raise ValueError(f"The branched model was not grown from this one: {differ[:3] or 'labels'} differ.")


def pool_logits(first: torch.Tensor, branched: torch.Tensor, weight: float) -> torch.Tensor:
    """What `pool_heads` serves, from the two models' calibrated logits."""
    return (1 - weight) * first + weight * branched


@dataclass
class DevLogits:
    """Both models' calibrated logits on the dev rows of the first run's data, and how to score them."""

    collected: Any  # train.evaluate.Collected: labels, targets and source of every row (logits: the first's raw)
    first: torch.Tensor
    branched: torch.Tensor
    names: list[str]
    source_ids: dict[str, int]
    source_labels: dict[str, list[str]]

    def score(self, logits: torch.Tensor, metric: str = "macro_f1") -> dict[str, float]:
        """Each corpus's `metric` (macro-F1 over its own labels) for these logits of the dev rows."""
        from train.evaluate import by_source
        from train.report import source_name

        found = by_source(dataclasses.replace(self.collected, logits=logits), self.names, self.source_ids,
                          self.source_labels)  # fmt: skip
        return {source_name(ref): r[metric] for ref, r in found.items()}

    def rows(self) -> dict[str, int]:
        from train.report import source_name

        return {source_name(ref): int((self.collected.source == i).sum()) for ref, i in self.source_ids.items()}


def dev_logits(first_dir: Path, branched_dir: Path) -> DevLogits:
    """Run both folders (the first run and a branch grown on it) over the first run's dev rows."""
    from fusion.hub import load_model_folder
    from fusion.preprocess import Preprocessor
    from train.evaluate import collect_logits
    from train.loader import make_loader

    first, tokenizer = load_model_folder(first_dir)
    branched, _ = load_model_folder(branched_dir)
    check_shared(first, branched)
    splits, report, _ = run_splits(first_dir)
    dev = splits["validation"]
    loader = make_loader(dev, Preprocessor(first.preprocess_cfg, tokenizer, is_train=False), 64, labels=first.labels)
    collected = collect_logits(first, loader, desc="dev (first)")
    return DevLogits(
        collected=collected,
        first=collected.logits / float(first.temperature),
        branched=collect_logits(branched, loader, desc="dev (branched)").logits / float(branched.temperature),
        names=list(first.labels),
        source_ids=loader.dataset.source_ids,
        source_labels=report.labels,
    )


def run_splits(run_dir: Path) -> tuple[Any, Any, Any]:
    """(splits, data report, `TrainConfig`) of a finished run's data, split as its training split it (the teacher
    targets its training cached are read back)."""
    from train.config import TrainConfig
    from train.data import load_sources, split_dataset

    recorded = json.loads((run_dir / "training_args.json").read_text())
    config = TrainConfig(**{f.name: recorded[f.name] for f in dataclasses.fields(TrainConfig) if f.name in recorded})
    by_split, report = load_sources(config.data, cache_dir=run_dir / "teacher_targets")
    return split_dataset(by_split, config.seed, config.validation_share, config.test_share), report, config
