"""`datasets.Dataset` rows -> model batches, through the serving preprocessing (`fusion.preprocess`).

A batch carries, besides the model inputs, `targets` (B x L: each row's distribution over the model's
L labels), `label_mask` (B x L: the labels the row's source uses), `labels` (the hard label, for metrics),
`weight` (the source's loss weight) and `source` (an id per source, for per-source scores). The model's
labels come from its config: `label_order` maps them onto the data's 7 emotions.
"""

from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from fusion.labels import EMOTIONS
from fusion.preprocess import Preprocessor
from train.data import DataError


def label_order(labels: list[str]) -> list[int]:
    """For each of a model's labels, its column among the data's 7 emotions (a model label that is no
    emotion of the data is an error: it could never be trained or scored)."""
    unknown = [name for name in labels if name not in EMOTIONS]
    if unknown:
        raise DataError(f"The model's labels {unknown} are not emotions the data knows ({', '.join(EMOTIONS)}).")
    return [EMOTIONS.index(name) for name in labels]


class EmotionRows(torch.utils.data.Dataset):
    """Row i -> a dict of index, image tensor or None, text, target, label mask and weight; faces are cropped
    exactly as when serving."""

    def __init__(self, ds: Dataset, preprocessor: Preprocessor, use_images: bool = True, use_texts: bool = True):
        # A hidden (or cached) modality is never read, so images are not decoded for nothing.
        self.ds = ds if use_images else ds.remove_columns("image")
        self.preprocessor = preprocessor
        self.use_images, self.use_texts = use_images, use_texts
        names = sorted(set(ds["source"])) if "source" in ds.column_names else []
        self.source_ids = {name: i for i, name in enumerate(names)}

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.ds[index]
        image = None
        if self.use_images and row["image"] is not None:
            image = self.preprocessor.image_tensor(self.preprocessor.face(row["image"]))
        return {
            "index": index,
            "image": image,
            "text": (row["text"] if self.use_texts else "") or "",
            "target": row["target"],
            "label_mask": row["label_mask"],
            "weight": row["weight"],
            "source": self.source_ids.get(row.get("source"), 0),
        }


class Collate:
    """Batches rows; missing images/texts become presence flags (the model fills in placeholders)."""

    def __init__(self, preprocessor: Preprocessor, order: list[int] | None = None):
        self.preprocessor = preprocessor
        self.order = order if order is not None else list(range(len(EMOTIONS)))

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = {
            k: v
            for k, v in self.preprocessor.collate([i["image"] for i in items], [i["text"] for i in items]).items()
            if v is not None
        }
        targets = torch.tensor([i["target"] for i in items], dtype=torch.float32)[:, self.order]
        mask = torch.tensor([i["label_mask"] for i in items], dtype=torch.bool)[:, self.order]
        lost = targets.sum(1) <= 0
        if bool(lost.any()):
            raise DataError(f"{int(lost.sum())} row(s) are labelled only with emotions the model does not have.")
        batch.update(
            index=torch.tensor([i["index"] for i in items]),
            targets=targets / targets.sum(1, keepdim=True),
            label_mask=mask | (targets > 0),  # a row's own label always counts
            labels=targets.argmax(1),
            weight=torch.tensor([i["weight"] for i in items], dtype=torch.float32),
            source=torch.tensor([i["source"] for i in items]),
        )
        return batch


def source_shares(sources: list[str], temperature: float, fixed: dict[str, float] | None = None) -> dict[str, float]:
    """Each source's share of an epoch: `fixed` ones as given (`#share=S`), the rest of the epoch split among the
    others in proportion to their rows ** temperature (1: as in the data, 0.5: the square root, which lifts small
    corpora without repeating them endlessly, 0: every source equal). When every source is fixed, their shares
    are taken relative to each other."""
    counts: dict[str, int] = {}
    for name in sources:
        counts[name] = counts.get(name, 0) + 1
    fixed = {name: share for name, share in (fixed or {}).items() if name in counts}
    free = {name: n**temperature for name, n in counts.items() if name not in fixed}
    left = 1 - sum(fixed.values())
    if not free:
        return {name: share / sum(fixed.values()) for name, share in fixed.items()}
    if left <= 0:
        raise DataError(f"The sources' #share values add up to {1 - left:g}, leaving nothing for {sorted(free)}.")
    return {**fixed, **{name: left * m / sum(free.values()) for name, m in free.items()}}


class SourceSampler(torch.utils.data.Sampler[int]):
    """An epoch of `rows` row indices drawn per source by `source_shares` (a source is gone through in a new
    random order before any of its rows repeats), then shuffled."""

    def __init__(
        self,
        sources: list[str],
        temperature: float,
        rows: int,
        generator: torch.Generator,
        fixed: dict[str, float] | None = None,
    ):
        self.generator, self.rows = generator, rows
        self.by_source: dict[str, list[int]] = {}
        for i, name in enumerate(sources):
            self.by_source.setdefault(name, []).append(i)
        self.shares = source_shares(sources, temperature, fixed)

    def __len__(self) -> int:
        return sum(round(self.rows * share) for share in self.shares.values())

    def __iter__(self):
        order = []
        for name, share in self.shares.items():
            pool, wanted = torch.tensor(self.by_source[name]), round(self.rows * share)
            while wanted > 0:
                take = pool[torch.randperm(len(pool), generator=self.generator)][:wanted]
                order += take.tolist()
                wanted -= len(take)
        yield from (order[i] for i in torch.randperm(len(order), generator=self.generator).tolist())


class LengthGroupedSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of rows whose texts have about the same length, so a batch pads little.

    Rows are shuffled (or drawn by `base`, e.g. a `SourceSampler`), each run of `50 * batch_size` is sorted by
    length and cut into batches, and the batches are shuffled: content and order stay random, padding drops to
    near each batch's own length.
    """

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator, base=None):
        self.lengths, self.batch_size, self.generator, self.base = lengths, batch_size, generator, base

    def __len__(self) -> int:
        run = 50 * self.batch_size
        full, rest = divmod(len(self.base) if self.base is not None else len(self.lengths), run)
        return full * 50 + -(-rest // self.batch_size)

    def __iter__(self):
        if self.base is not None:
            order = list(self.base)
        else:
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
    labels: list[str] | None = None,
    source_temperature: float = 1.0,
    epoch_rows: int = 0,
    shares: dict[str, float] | None = None,
) -> DataLoader:
    """Batches of `ds` for a model whose labels are `labels` (default: the 7 emotions in the data's order).

    When shuffling, `source_temperature` other than 1, `epoch_rows` or fixed `shares` draw each epoch by source
    (`SourceSampler`)."""
    generator = torch.Generator().manual_seed(seed)
    batching: dict[str, Any] = {"batch_size": batch_size, "shuffle": shuffle}
    base = None
    if shuffle and (source_temperature != 1.0 or epoch_rows or shares):
        base = SourceSampler(ds["source"], source_temperature, epoch_rows or len(ds), generator, shares)
        batching = {"batch_size": batch_size, "sampler": base}
    if shuffle and group_by_length:
        lengths = [len(t or "") for t in ds["text"]]
        batching = {"batch_sampler": LengthGroupedSampler(lengths, batch_size, generator, base)}
    return DataLoader(
        EmotionRows(ds, preprocessor, use_images, use_texts),
        **batching,
        num_workers=num_workers,
        collate_fn=Collate(preprocessor, label_order(labels) if labels else None),
        generator=generator,
        persistent_workers=num_workers > 0,
    )


MODEL_INPUTS = (
    "pixel_values",
    "input_ids",
    "attention_mask",
    "image_present",
    "text_present",
    "text_ngrams",
    "text_ngram_weights",
)


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: batch[k] for k in MODEL_INPUTS if k in batch}
