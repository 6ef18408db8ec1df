"""Epoch checkpoints (resumable with `--resume`) and the best epoch's weights."""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from fusion.model import EmotionFusionModel
from train.report import write_json


@dataclass
class Progress:
    """What a checkpoint needs to continue: epochs done, best validation score, patience, history."""

    epoch: int = 0
    best_f1: float = -1.0
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


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


def load_best(accelerator: Accelerator, model, out_dir: Path) -> EmotionFusionModel:
    """The unwrapped model with the best epoch's weights, in eval mode."""
    accelerator.wait_for_everyone()
    model = accelerator.unwrap_model(model)
    best = out_dir / "best" / "model.safetensors"
    if best.is_file():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(best))  # copied onto the model's device
    return model.eval()
