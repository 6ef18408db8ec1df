"""`datasets.Dataset` rows -> model batches, through the serving preprocessing (`fusion.preprocess`)."""

from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from fusion.preprocess import Preprocessor


class EmotionRows(torch.utils.data.Dataset):
    """Row i -> (index, image tensor or None, text, label); faces are cropped exactly as when serving."""

    def __init__(self, ds: Dataset, preprocessor: Preprocessor, use_images: bool = True, use_texts: bool = True):
        # A hidden (or cached) modality is never read, so images are not decoded for nothing.
        self.ds = ds if use_images else ds.remove_columns("image")
        self.preprocessor = preprocessor
        self.use_images, self.use_texts = use_images, use_texts

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str, int]:
        row = self.ds[index]
        image = None
        if self.use_images and row["image"] is not None:
            image = self.preprocessor.image_tensor(self.preprocessor.face(row["image"]))
        text = row["text"] if self.use_texts else ""
        return index, image, text or "", int(row["label"])


class Collate:
    """Batches rows; missing images/texts become presence flags (the model fills in placeholders)."""

    def __init__(self, preprocessor: Preprocessor):
        self.preprocessor = preprocessor

    def __call__(self, items: list[tuple[int, torch.Tensor | None, str, int]]) -> dict[str, Any]:
        indices, images, texts, labels = zip(*items)
        batch = {k: v for k, v in self.preprocessor.collate(images, texts).items() if v is not None}
        batch.update(index=torch.tensor(indices), labels=torch.tensor(labels))
        return batch


class LengthGroupedSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of rows whose texts have about the same length, so a batch pads little.

    Rows are shuffled, each run of `50 * batch_size` is sorted by length and cut into batches, and the
    batches are shuffled: content and order stay random, padding drops to near each batch's own length.
    """

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator):
        self.lengths, self.batch_size, self.generator = lengths, batch_size, generator

    def __len__(self) -> int:
        run = 50 * self.batch_size
        full, rest = divmod(len(self.lengths), run)
        return full * 50 + -(-rest // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        run = 50 * self.batch_size
        batches = []
        for start in range(0, len(order), run):
            chunk = sorted(order[start : start + run], key=lambda i: self.lengths[i], reverse=True)
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]


def make_loader(
    ds: Dataset,
    preprocessor: Preprocessor,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    use_images: bool = True,
    use_texts: bool = True,
    group_by_length: bool = False,
) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    batching: dict[str, Any] = {"batch_size": batch_size, "shuffle": shuffle}
    if shuffle and group_by_length:
        batching = {"batch_sampler": LengthGroupedSampler([len(t or "") for t in ds["text"]], batch_size, generator)}
    return DataLoader(
        EmotionRows(ds, preprocessor, use_images, use_texts),
        **batching,
        num_workers=num_workers,
        collate_fn=Collate(preprocessor),
        generator=generator,
        persistent_workers=num_workers > 0,
    )


MODEL_INPUTS = ("pixel_values", "input_ids", "attention_mask", "image_present", "text_present")


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: batch[k] for k in MODEL_INPUTS if k in batch}
