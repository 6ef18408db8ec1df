"""Features of frozen encoders, computed once per split so later epochs run only the rest of the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset
from tqdm.auto import tqdm

from fusion.model import encode_rows
from fusion.preprocess import Preprocessor
from train.loader import make_loader, model_inputs


@dataclass
class FeatureCache:
    """Row-indexed features (and presence) of the frozen towers; None for a tower that trains."""

    text: torch.Tensor | None
    text_present: torch.Tensor
    image: torch.Tensor | None
    image_present: torch.Tensor


@torch.inference_mode()
def build_cache(
    model, preprocessor: Preprocessor, ds: Dataset, batch_size: int, accelerator, desc: str = "train"
) -> FeatureCache:
    """Encode every row of `ds` with the frozen towers (eval preprocessing: no augmentation)."""
    unwrapped = accelerator.unwrap_model(model)
    use_text, use_image = unwrapped.freeze_text, unwrapped.freeze_image
    loader = accelerator.prepare(
        make_loader(ds, preprocessor, batch_size, shuffle=False, use_images=use_image, use_texts=use_text)
    )
    n = len(ds)
    text = torch.zeros(n, unwrapped.text.dim) if use_text else None
    image = torch.zeros(n, unwrapped.image.dim) if use_image else None
    text_present = torch.zeros(n, dtype=torch.bool)
    image_present = torch.zeros(n, dtype=torch.bool)
    unwrapped.eval()
    show = accelerator.is_local_main_process
    for batch in tqdm(loader, desc=f"caching frozen features ({desc})", leave=False, disable=not show):
        index = batch["index"]
        parts: dict[str, Any] = {"index": index}
        # Every process must gather the same keys, so a modality is always sent, even if all-missing.
        if use_text:
            rows = batch["text_present"]
            feats = encode_rows(unwrapped.encode_text, rows, batch.get("input_ids"), batch.get("attention_mask"))
            parts.update(text=_or_zeros(feats, len(index), unwrapped.text.dim, index.device), text_present=rows)
        if use_image:
            rows = batch["image_present"]
            feats = encode_rows(unwrapped.encode_image, rows, batch.get("pixel_values"))
            parts.update(image=_or_zeros(feats, len(index), unwrapped.image.dim, index.device), image_present=rows)
        parts = accelerator.gather_for_metrics(parts)
        index = parts["index"].cpu()
        if "text" in parts:
            text[index] = parts["text"].cpu()
            text_present[index] = parts["text_present"].cpu()
        if "image" in parts:
            image[index] = parts["image"].cpu()
            image_present[index] = parts["image_present"].cpu()
    return FeatureCache(text, text_present, image, image_present)


def _or_zeros(feats: torch.Tensor | None, rows: int, dim: int, device) -> torch.Tensor:
    return feats.float() if feats is not None else torch.zeros(rows, dim, device=device)


def cached_inputs(cache: FeatureCache | None, batch: dict[str, Any]) -> dict[str, Any]:
    """Model inputs for `batch`, with cached features in place of the frozen towers' raw inputs."""
    inputs = model_inputs(batch)
    if cache is None:
        return inputs
    index = batch["index"].cpu()
    device = batch["labels"].device
    if cache.text is not None:
        inputs.pop("input_ids", None)
        inputs.pop("attention_mask", None)
        inputs["text_feats"] = cache.text[index].to(device)
        inputs["text_present"] = cache.text_present[index].to(device)
    if cache.image is not None:
        inputs.pop("pixel_values", None)
        inputs["image_feats"] = cache.image[index].to(device)
        inputs["image_present"] = cache.image_present[index].to(device)
    return inputs
