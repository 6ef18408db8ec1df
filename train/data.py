"""Data sources -> one `datasets.Dataset` per split, with the columns training and scoring read.

Columns: `image`, `text`, `label` (the row's hard label: its target's most likely emotion), `target` (a
distribution over the 7 emotions: one-hot for a hard label, FER+'s crowd votes, a GoEmotions comment
spread over its emotions), `label_mask` (the labels the row's source uses: the loss is computed over those
only, so a corpus without "neutral" never teaches that neutral does not happen), `weight` (the source's
loss weight) and `source` (the `--data` value the row came from). Source kinds: `train.sources`.

Bad rows (unknown labels, missing or unreadable images, rows with neither modality) are reported by
source and row; with `skip_bad` they are dropped and counted. A row's own label is always in its mask.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value, concatenate_datasets
from datasets import Image as ImageFeature

from fusion.labels import EMOTIONS, NUM_LABELS, UnknownLabelError, parse_label
from fusion.preprocess import InvalidImageError, load_image
from train.sources import SPLITS, ReadContext, SourceError, SourceSpec, find_kind

logger = logging.getLogger(__name__)

FEATURES = Features(
    {
        "image": ImageFeature(),
        "text": Value("string"),
        "label": ClassLabel(names=list(EMOTIONS)),
        "target": Sequence(Value("float32"), length=NUM_LABELS),
        "label_mask": Sequence(Value("bool"), length=NUM_LABELS),
        "weight": Value("float32"),
        "source": Value("string"),
    }
)
REPORT_ROWS = 20


class DataError(ValueError):
    """Bad rows were found and `skip_bad` was not set, or a source cannot be read; the message says what."""


@dataclass
class BadRow:
    source: str
    row: int  # 1-based data row (CSV: the header is row 0)
    reason: str


@dataclass
class DataReport:
    bad: list[BadRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # rows left out by a documented rule, per source
    labels: dict[str, list[str]] = field(default_factory=dict)  # each source's label set

    def summary(self) -> str:
        lines = [f"{len(self.bad)} bad row(s):"]
        lines += [f"  {b.source} row {b.row}: {b.reason}" for b in self.bad[:REPORT_ROWS]]
        if len(self.bad) > REPORT_ROWS:
            lines.append(f"  ... and {len(self.bad) - REPORT_ROWS} more")
        lines.append("Fix them, or pass --skip-bad to drop them.")
        return "\n".join(lines)


def check_image(value: Any) -> str | None:
    """None if `value` (a path, bytes, a {'path','bytes'} dict or None) is an image the model can read, else why not."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
        if value is None:
            return None
    if not isinstance(value, (bytes, bytearray)) and not Path(value).is_file():
        return f"image file not found: {value}"
    try:
        load_image(value)  # the serving check: same limits, fully decoded, so nothing fails mid-epoch
    except InvalidImageError as err:
        return f"image cannot be read: {err}"
    return None


def row_target(row: dict[str, Any]) -> list[float]:
    """The row's target over the 7 emotions: its "target" distribution if it has one, else its label one-hot."""
    target = [0.0] * NUM_LABELS
    given = row.get("target")
    if given:
        for name, weight in given.items():
            target[parse_label(name)] += float(weight)
        total = sum(target)
        return [t / total for t in target]
    target[parse_label(row["label"])] = 1.0
    return target


def normalise_rows(rows: list[dict[str, Any]], source: str, report: DataReport) -> list[dict[str, Any]]:
    """Parse labels and targets, check images and drop rows that carry neither modality; bad rows go to `report`."""
    good = []
    for number, row in enumerate(rows, start=1):
        try:
            target = row_target(row)
            label = (
                parse_label(row["label"])
                if row.get("label") is not None
                else max(range(NUM_LABELS), key=target.__getitem__)
            )
        except UnknownLabelError as err:
            report.bad.append(BadRow(source, number, str(err).split(". Use")[0]))
            continue
        problem = check_image(row.get("image"))
        text = (row.get("text") or "").strip()
        if problem is None and row.get("image") is None and not text:
            problem = "neither an image nor a text"
        if problem:
            report.bad.append(BadRow(source, number, problem))
            continue
        good.append({"image": row.get("image"), "text": text, "label": label, "target": target})
    return good


def _dataset(rows: list[dict[str, Any]]) -> Dataset:
    for row in rows:  # datasets' Image feature takes a path string, bytes or {"path","bytes"}
        if isinstance(row["image"], Path):
            row["image"] = str(row["image"])
    if not rows:
        return Dataset.from_dict({k: [] for k in FEATURES}, features=FEATURES)
    return Dataset.from_list(rows, features=FEATURES)


def source_label_mask(spec: SourceSpec, parts: dict[str, list[dict]]) -> list[bool]:
    """The labels a source's annotators could give: all (the default), the spec's list, or with `#labels=auto` those
    with any target mass in its rows (a source whose rows all share one label then teaches nothing)."""
    if spec.labels == "all":
        return [True] * NUM_LABELS
    if spec.labels != "auto":
        return [name in spec.labels for name in EMOTIONS]
    used = [False] * NUM_LABELS
    for rows in parts.values():
        for row in rows:
            used = [u or t > 0 for u, t in zip(used, row["target"], strict=True)]
    return used


def load_sources(
    specs: list[str], skip_bad: bool = False, unreviewed_flags: bool = False, cache_dir: Path | None = None
) -> tuple[dict[str, Dataset], DataReport]:
    """Every source, normalised and concatenated per split ('all' for sources without splits). A source with a
    `#teacher` has its train split's targets mixed with the teacher's (`train.distill`, cached in `cache_dir`)."""
    report = DataReport()
    parts: dict[str, list[Dataset]] = {}
    for text in specs:
        try:
            spec = SourceSpec.parse(text)
            kind = find_kind(spec)
            raw = kind.read(spec, ReadContext(report.notes, unreviewed_flags))
        except SourceError as err:
            raise DataError(str(err)) from None
        rows = {split: normalise_rows(r, spec.ref if split == "all" else f"{spec.ref}[{split}]", report)
                for split, r in raw.items()}  # fmt: skip
        mask = source_label_mask(spec, rows)
        report.labels[spec.ref] = [name for name, used in zip(EMOTIONS, mask, strict=True) if used]
        if spec.teacher:
            rows["train"] = _distilled(rows, spec, mask, cache_dir)
            report.notes.append(f"{spec.ref}: training targets {1 - spec.distill:g} own + {spec.distill:g} teacher "
                                f"{spec.teacher} (temperature {spec.distill_temperature:g})")  # fmt: skip
        for split, split_rows in rows.items():
            for row in split_rows:
                own = [m or t > 0 for m, t in zip(mask, row["target"], strict=True)]
                row.update(label_mask=own, weight=spec.weight, source=spec.ref)
            parts.setdefault(split, []).append(_dataset(split_rows))
    if report.bad:
        if not skip_bad:
            raise DataError(report.summary())
        logger.warning("Dropped %d bad row(s) (--skip-bad); first: %s", len(report.bad), report.bad[0])
    return {split: concatenate_datasets(dsets) for split, dsets in parts.items()}, report


def _distilled(rows: dict[str, list[dict]], spec: SourceSpec, mask: list[bool], cache_dir: Path | None) -> list[dict]:
    from train.distill import with_teacher

    if "train" not in rows:
        raise DataError(f"{spec.ref} has no train split of its own; #teacher labels a source's train split only "
                        "(its validation rows keep their own labels).")  # fmt: skip
    try:
        return with_teacher(rows["train"], spec, mask, cache_dir)
    except (SourceError, OSError) as err:
        raise DataError(f"{spec.ref}#teacher={spec.teacher}: {err}") from None


def split_dataset(
    datasets_by_split: dict[str, Dataset], seed: int = 0, validation: float = 0.1, test: float = 0.1
) -> DatasetDict:
    """Stratified (by hard label), seeded train/validation/test split of the split-less part; given splits are kept."""
    given = {k: v for k, v in datasets_by_split.items() if k != "all"}
    pool = datasets_by_split.get("all")
    if pool is not None and len(pool):
        if not given.get("train"):
            given["train"] = pool
        else:
            given["train"] = concatenate_datasets([given["train"], pool])
    train = given.get("train")
    if train is None or not len(train):
        raise DataError("No training rows: every source was empty or bad.")
    for name, share in (("test", test), ("validation", validation)):
        if name in given or share <= 0:
            continue
        size = max(len(EMOTIONS), round(share * len(pool if pool is not None else train)))
        parts = train.train_test_split(test_size=size, seed=seed, stratify_by_column=_stratify_column(train))
        train, given[name] = parts["train"], parts["test"]
    given["train"] = train
    return DatasetDict({k: given[k] for k in SPLITS if k in given})


def _stratify_column(ds: Dataset) -> str | None:
    """Stratify by label where every class has at least two rows (datasets requires it)."""
    counts = {}
    for label in ds["label"]:
        counts[label] = counts.get(label, 0) + 1
    return "label" if counts and min(counts.values()) >= 2 else None
