"""Data sources -> one `datasets.Dataset` with columns image, text, label, source.

A source spec is one of:
  path/to/data.csv             the CSV format `image_path,text,label` (paths relative to the CSV)
  path/to/data.parquet         parquet with `image` (a `datasets.Image` column) and/or `text`, and `label`;
                               a folder of them is split by file name (train, validation/dev, test)
  path/to/train.tsv            GoEmotions TSV (`text<TAB>label ids<TAB>id`); a folder of them likewise
                               (see `train.goemotions` for the label names and the multi-label rule)
  path/to/folder               an image folder, one sub-folder per emotion (`texts.csv` with
                               `file_name,text` beside them adds texts), or a `save_to_disk` folder
  flags:path/to/flag-store     the app's flag store: flags a maintainer reviewed (the review's label);
                               with `unreviewed_flags`, visitors' unreviewed corrections too
  hub:user/name[:config][@split]  a Hub dataset via `load_dataset` (column names: see `ColumnMap`;
                               GoEmotions' "simplified" config is mapped to the 7 emotions); a named
                               split (train, validation, test) stays that split
Bad rows (unknown labels, missing or unreadable images, rows with neither modality) are
reported by source and row; with `skip_bad` they are dropped and counted.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, concatenate_datasets, load_dataset
from datasets import Image as ImageFeature

from fusion.labels import EMOTIONS, UnknownLabelError, parse_label
from fusion.preprocess import InvalidImageError, load_image

logger = logging.getLogger(__name__)

FEATURES = Features(
    {
        "image": ImageFeature(),
        "text": Value("string"),
        "label": ClassLabel(names=list(EMOTIONS)),
        "source": Value("string"),
    }
)
SPLITS = ("train", "validation", "test")
REPORT_ROWS = 20


class DataError(ValueError):
    """Bad rows were found and `skip_bad` was not set; the message lists them."""


@dataclass
class BadRow:
    source: str
    row: int  # 1-based data row (CSV: the header is row 0)
    reason: str


@dataclass
class DataReport:
    bad: list[BadRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # rows left out by a documented rule, per source

    def summary(self) -> str:
        lines = [f"{len(self.bad)} bad row(s):"]
        lines += [f"  {b.source} row {b.row}: {b.reason}" for b in self.bad[:REPORT_ROWS]]
        if len(self.bad) > REPORT_ROWS:
            lines.append(f"  ... and {len(self.bad) - REPORT_ROWS} more")
        lines.append("Fix them, or pass --skip-bad to drop them.")
        return "\n".join(lines)


@dataclass(frozen=True)
class ColumnMap:
    """Column names of a Hub dataset."""

    image: str | None = "image"
    text: str | None = "text"
    label: str = "label"


# ---------------------------------------------------------------------------------------------
# Row checks shared by every source


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


def _label_names(feature: Any) -> list[str] | None:
    return list(feature.names) if isinstance(feature, ClassLabel) else None


def normalise_rows(rows: list[dict[str, Any]], source: str, report: DataReport) -> list[dict[str, Any]]:
    """Parse labels, check images and drop rows that carry neither modality; bad rows go to `report`."""
    good = []
    for number, row in enumerate(rows, start=1):
        try:
            label = parse_label(row["label"])
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
        good.append({"image": row.get("image"), "text": text, "label": label, "source": source})
    return good


def _dataset(rows: list[dict[str, Any]]) -> Dataset:
    for row in rows:  # datasets' Image feature takes a path string, bytes or {"path","bytes"}
        if isinstance(row["image"], Path):
            row["image"] = str(row["image"])
    if not rows:
        return Dataset.from_dict({k: [] for k in FEATURES}, features=FEATURES)
    return Dataset.from_list(rows, features=FEATURES)


# ---------------------------------------------------------------------------------------------
# Sources


def read_csv(path: Path) -> list[dict[str, Any]]:
    """The original project's `image_path,text,label` CSV (extra columns are ignored)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"image_path", "text", "label"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path} lacks the column(s) {sorted(missing)}; expected image_path,text,label.")
        return [
            {
                "image": (path.parent / row["image_path"]) if (row["image_path"] or "").strip() else None,
                "text": row["text"],
                "label": row["label"],
            }
            for row in reader
        ]


def read_image_folder(folder: Path) -> list[dict[str, Any]]:
    """`load_dataset("imagefolder")` on one-folder-per-emotion data; `texts.csv` (file_name,text) adds texts."""
    loaded = load_dataset("imagefolder", data_dir=str(folder), split="train")
    names = _label_names(loaded.features.get("label"))
    if names is None:
        raise DataError(f"{folder} is not an image folder with one sub-folder per emotion.")
    texts = {}
    text_file = folder / "texts.csv"
    if text_file.is_file():
        with text_file.open(newline="", encoding="utf-8-sig") as handle:
            texts = {str((folder / r["file_name"]).resolve()): r["text"] for r in csv.DictReader(handle)}
    raw = loaded.cast_column("image", ImageFeature(decode=False))
    return [
        {
            "image": r["image"]["path"],
            "label": names[r["label"]],
            "text": texts.get(str(Path(r["image"]["path"]).resolve())),
        }
        for r in raw
    ]


def rows_from_dataset(ds: Dataset, columns: ColumnMap = ColumnMap()) -> list[dict[str, Any]]:
    """Rows of any `datasets.Dataset` (images undecoded), labels as names where the feature has them."""
    if columns.label not in ds.column_names:
        raise DataError(f"No label column {columns.label!r}; the dataset has {ds.column_names}.")
    names = _label_names(ds.features[columns.label])
    image_col = columns.image if columns.image in ds.column_names else None
    text_col = columns.text if columns.text in ds.column_names else None
    if image_col is None and text_col is None:
        raise DataError(
            f"Neither image column {columns.image!r} nor text column {columns.text!r} in {ds.column_names}."
        )
    if image_col:
        ds = ds.cast_column(image_col, ImageFeature(decode=False))
    rows = []
    for r in ds:
        label = r[columns.label]
        rows.append(
            {
                "image": r[image_col] if image_col else None,
                "text": r[text_col] if text_col else "",
                "label": names[label] if names is not None and isinstance(label, int) and label >= 0 else label,
            }
        )
    return rows


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "dataset_info.json").is_file()


def read_source(
    spec: str, columns: ColumnMap = ColumnMap(), report: DataReport | None = None, unreviewed_flags: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Raw rows per split ('all' when the source has no splits of its own)."""
    report = report if report is not None else DataReport()
    if spec.startswith("flags:"):
        from flags.store import FlagStore

        rows, left_out = FlagStore(Path(spec[len("flags:") :])).training_rows(unreviewed_flags)
        report.notes.append(_flag_note(spec, len(rows), left_out, unreviewed_flags))
        return {"all": rows}
    if spec.startswith("hub:"):
        return _read_hub(spec[len("hub:") :], columns, report, unreviewed_flags)
    path = Path(spec).expanduser()
    suffix = path.suffix.lower()
    if path.is_file() and suffix == ".csv":
        return {"all": read_csv(path)}
    if path.is_file() and suffix in READERS:
        return {"all": READERS[suffix](path, columns, report)}
    if path.is_dir() and (files := _split_files(path)):
        return {split: READERS[file.suffix](file, columns, report) for split, file in files.items()}
    if path.is_dir():
        if _is_saved_dataset(path):
            from datasets import load_from_disk

            loaded = load_from_disk(str(path))
            if isinstance(loaded, DatasetDict):
                return {_split_name(k): rows_from_dataset(v, columns) for k, v in loaded.items()}
            return {"all": rows_from_dataset(loaded, columns)}
        if (path / "data.csv").is_file():
            return {"all": read_csv(path / "data.csv")}
        return {"all": read_image_folder(path)}
    raise DataError(
        f"Data source {spec!r} not found. Give a CSV, parquet or TSV file, a folder, flags:FOLDER or "
        "hub:USER/NAME[:CONFIG][@SPLIT]."
    )


def read_parquet(path: Path, columns: ColumnMap, report: DataReport) -> list[dict[str, Any]]:
    return rows_from_dataset(load_dataset("parquet", data_files=str(path), split="train"), columns)


def read_goemotions_tsv(path: Path, columns: ColumnMap, report: DataReport) -> list[dict[str, Any]]:
    from train import goemotions

    rows, multi = goemotions.read_tsv(path)
    if multi:
        report.notes.append(f"{path}: left out {multi} comment(s) whose labels span several emotions")
    return rows


READERS = {".parquet": read_parquet, ".tsv": read_goemotions_tsv}


def _split_files(folder: Path) -> dict[str, Path]:
    """train.parquet / validation.parquet / dev.tsv ... in a folder -> {split: file}."""
    found = {}
    for file in sorted(folder.iterdir()):
        if file.suffix in READERS and _split_name(file.stem) in SPLITS:
            found[_split_name(file.stem)] = file
    return found


def _flag_note(name: str, used: int, left_out: int, unreviewed: bool) -> str:
    if unreviewed:
        return f"{name}: {used} flag(s) used, reviewed or not"
    return f"{name}: {used} reviewed flag(s) used, {left_out} unreviewed left out (--unreviewed-flags adds them)"


def _split_name(name: str) -> str:
    aliases = {"valid": "validation", "val": "validation", "dev": "validation", "publictest": "validation",
               "privatetest": "test"}  # fmt: skip
    return aliases.get(name.lower(), name)


def _read_hub(ref: str, columns: ColumnMap, report: DataReport, unreviewed: bool) -> dict[str, list[dict[str, Any]]]:
    ref, _, split = ref.partition("@")
    repo_id, _, config = ref.partition(":")
    loaded = load_dataset(repo_id, config or None, split=split or None)
    parts = dict(loaded) if isinstance(loaded, DatasetDict) else {split if split else "all": loaded}
    rows = {}
    for name, ds in parts.items():
        name = _split_name(name) if _split_name(name) in SPLITS else "all"  # "train[:10%]" is no split of its own
        rows[name] = rows.get(name, []) + _hub_rows(ds, columns, report, f"hub:{ref}@{name}", unreviewed)
    return rows


def _hub_rows(ds: Dataset, columns: ColumnMap, report: DataReport, name: str, unreviewed: bool) -> list[dict[str, Any]]:
    from flags.sync import is_flag_dataset, newest_flags
    from train import goemotions

    if is_flag_dataset(ds):  # the app's synced flags: append-only, newest version of each flag wins
        ds = newest_flags(ds)
        reviewed = [status is not None for status in ds["review_status"]]
        used = ds if unreviewed else ds.select([i for i, ok in enumerate(reviewed) if ok])
        report.notes.append(_flag_note(name, len(used), len(ds) - len(used), unreviewed))
        return rows_from_dataset(used, columns)
    if not goemotions.is_goemotions(ds):
        return rows_from_dataset(ds, columns)
    rows, multi = goemotions.dataset_rows(ds)
    if multi:
        report.notes.append(f"{name}: left out {multi} comment(s) whose labels span several emotions")
    return rows


# ---------------------------------------------------------------------------------------------
# Putting sources together


def load_sources(
    specs: list[str], skip_bad: bool = False, columns: ColumnMap = ColumnMap(), unreviewed_flags: bool = False
) -> tuple[dict[str, Dataset], DataReport]:
    """Every source, normalised and concatenated per split ('all' for sources without splits)."""
    report = DataReport()
    parts: dict[str, list[Dataset]] = {}
    for spec in specs:
        for split, rows in read_source(spec, columns, report, unreviewed_flags).items():
            name = spec if split == "all" else f"{spec}[{split}]"
            parts.setdefault(split, []).append(_dataset(normalise_rows(rows, name, report)))
    if report.bad:
        if not skip_bad:
            raise DataError(report.summary())
        logger.warning("Dropped %d bad row(s) (--skip-bad); first: %s", len(report.bad), report.bad[0])
    return {split: concatenate_datasets(dsets) for split, dsets in parts.items()}, report


def split_dataset(
    datasets_by_split: dict[str, Dataset], seed: int = 0, validation: float = 0.1, test: float = 0.1
) -> DatasetDict:
    """Stratified, seeded train/validation/test split of the split-less part; given splits are kept."""
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
