"""Every kind of data source in one registry: how a `--data` spec is recognised, read and labelled.

A kind turns a spec into raw rows per split ("all" when the source has no splits of its own). A row is
{"image": path/bytes/None, "text": str, "label": name or id} and may carry a "target" instead of (or
beside) its label: a distribution over emotions ({name: weight}), e.g. FER+'s crowd votes. A source uses
every label unless its spec says otherwise (`#labels=a,b,c`, or `#labels=auto`: the labels its rows
have): a corpus whose annotators had no "neutral" then never teaches that neutral does not happen
(`train.data`, `train.loss`).
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, load_dataset
from datasets import Image as ImageFeature

from fusion.labels import EMOTIONS
from train import ferplus, goemotions

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {"valid": "validation", "val": "validation", "dev": "validation", "publictest": "validation",
                 "privatetest": "test"}  # fmt: skip
Rows = list[dict[str, Any]]


class SourceError(ValueError):
    """A source that cannot be read as a whole (missing columns, not found); the message says what to give."""


@dataclass(frozen=True)
class SourceSpec:
    """One `--data` value: `REF[#weight=W][#labels=a,b,c][#share=S][#teacher=FOLDER[#distill=A][#distill-temperature=T]]
    [#multi=spread]`.

    `weight` scales the loss of this source's rows (noisy corpora count less); `labels` declares the
    labels the source's annotators could give (default: all; "auto": those its rows have); `share` fixes the
    source's share of an epoch when sampling by source (`train.loader.source_shares`); `teacher` names a
    finished model whose probabilities, softened by temperature T (default 2), make up share A (default 0.5)
    of each training row's target (`train.distill`); `multi=spread`
    keeps GoEmotions training comments that span several emotions as an even distribution over them (default:
    left out; a validation or test split keeps single-label comments only, so each scored row has one answer).
    """

    ref: str
    weight: float = 1.0
    labels: tuple[str, ...] | str = "all"
    share: float | None = None
    teacher: str | None = None
    distill: float = 0.5
    distill_temperature: float = 2.0
    multi: str = "drop"

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        ref, *options = text.split("#")
        values: dict[str, Any] = {}
        for option in options:
            key, _, value = option.partition("=")
            if key in ("weight", "distill-temperature"):
                values[key.replace("-", "_")] = _positive(value, key, text)
            elif key in ("share", "distill"):
                values[key] = _fraction(value, key, text)
            elif key == "teacher" and value.strip():
                values["teacher"] = value.strip()
            elif key == "labels" and value in ("all", "auto"):
                values["labels"] = value
            elif key == "labels":
                from fusion.labels import UnknownLabelError, parse_label

                try:
                    values["labels"] = tuple(EMOTIONS[parse_label(v)] for v in value.split(",") if v.strip())
                except UnknownLabelError as err:
                    raise SourceError(f"{err} (in {text!r})") from None
            elif key == "multi" and value in ("drop", "spread"):
                values["multi"] = value
            else:
                raise SourceError(
                    f"Unknown option {option!r} in {text!r}; use #weight=W, #labels=a,b, #share=S, "
                    "#teacher=FOLDER (#distill=A, #distill-temperature=T) or #multi=spread."
                )
        if "teacher" not in values and {"distill", "distill_temperature"} & set(values):
            raise SourceError(f"#distill options in {text!r} need a #teacher=FOLDER to distil from.")
        return cls(ref.strip(), **values)

    @property
    def path(self) -> Path:
        return Path(self.ref).expanduser()


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


def _positive(value: str, key: str, spec: str) -> float:
    if not _number(value) > 0:
        raise SourceError(f"#{key} in {spec!r} must be a positive number, not {value!r}.")
    return _number(value)


def _fraction(value: str, key: str, spec: str) -> float:
    if not 0 < _number(value) <= 1:
        raise SourceError(f"#{key} in {spec!r} must be a number in (0, 1], not {value!r}.")
    return _number(value)


def fixed_shares(specs: list[str]) -> dict[str, float]:
    """{source ref: its `#share`} for the `--data` values that fix their share of an epoch."""
    parsed = [SourceSpec.parse(text) for text in specs]
    return {spec.ref: spec.share for spec in parsed if spec.share is not None}


@dataclass
class ReadContext:
    """What readers may need beyond the spec: notes for the report, and whether unreviewed flags count."""

    notes: list[str]
    unreviewed_flags: bool = False
    split: str = "all"  # the split a reader is reading, where the source has splits


@dataclass(frozen=True)
class SourceKind:
    name: str
    usage: str  # how to write it, for --help and errors
    matches: Callable[[SourceSpec], bool]
    read: Callable[[SourceSpec, ReadContext], dict[str, Rows]]


# ---------------------------------------------------------------------------------------------
# Readers


def read_csv(path: Path) -> Rows:
    """`image_path,text,label` (the original project's format; paths relative to the CSV), or `text,label`,
    or `image_path,label`. Extra columns are ignored."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        if "label" not in columns or not columns & {"image_path", "text"}:
            raise SourceError(
                f"{path} has the columns {sorted(columns)}; expected image_path,text,label (either of "
                "image_path and text may be left out)."
            )
        rows = []
        for row in reader:
            image = (row.get("image_path") or "").strip()
            rows.append({"image": path.parent / image if image else None, "text": row.get("text") or "",
                         "label": row["label"]})  # fmt: skip
        return rows


def read_image_folder(folder: Path) -> Rows:
    """`load_dataset("imagefolder")` on one-folder-per-emotion data; `texts.csv` (file_name,text) adds texts."""
    loaded = load_dataset("imagefolder", data_dir=str(folder), split="train")
    feature = loaded.features.get("label")
    if not isinstance(feature, ClassLabel):
        raise SourceError(f"{folder} is not an image folder with one sub-folder per emotion.")
    texts = {}
    text_file = folder / "texts.csv"
    if text_file.is_file():
        with text_file.open(newline="", encoding="utf-8-sig") as handle:
            texts = {str((folder / r["file_name"]).resolve()): r["text"] for r in csv.DictReader(handle)}
    raw = loaded.cast_column("image", ImageFeature(decode=False))
    return [
        {"image": r["image"]["path"], "label": feature.names[r["label"]],
         "text": texts.get(str(Path(r["image"]["path"]).resolve()))}
        for r in raw
    ]  # fmt: skip


def rows_from_dataset(ds: Dataset) -> Rows:
    """Rows of any `datasets.Dataset` with a `label` and an `image` and/or `text` column (images undecoded);
    labels as names where the feature has them; FER+'s `votes` become the row's target."""
    if "label" not in ds.column_names:
        raise SourceError(f"No label column 'label'; the dataset has {ds.column_names}.")
    if "image" not in ds.column_names and "text" not in ds.column_names:
        raise SourceError(f"Neither an image nor a text column in {ds.column_names}.")
    feature = ds.features["label"]
    names = list(feature.names) if isinstance(feature, ClassLabel) else None
    if "image" in ds.column_names:
        ds = ds.cast_column("image", ImageFeature(decode=False))
    votes = ferplus.has_votes(ds)
    rows = []
    for r in ds:
        label = r["label"]
        row = {
            "image": r.get("image"),
            "text": r.get("text") or "",
            "label": names[label] if names is not None and isinstance(label, int) and label >= 0 else label,
        }
        if votes:
            row["target"] = ferplus.vote_target(r["votes"])
        rows.append(row)
    return rows


def read_parquet(path: Path, spec: SourceSpec, ctx: ReadContext) -> Rows:
    return rows_from_dataset(load_dataset("parquet", data_files=str(path), split="train"))


def read_goemotions_tsv(path: Path, spec: SourceSpec, ctx: ReadContext) -> Rows:
    spread = spec.multi == "spread" and ctx.split in ("train", "all")
    rows, multi = goemotions.read_tsv(path, spread=spread)
    if multi:
        ctx.notes.append(goemotions.multi_note(str(path), multi, spread))
    return rows


def read_csv_file(path: Path, spec: SourceSpec, ctx: ReadContext) -> Rows:
    return read_csv(path)


FILE_READERS: dict[str, Callable[[Path, SourceSpec, ReadContext], Rows]] = {
    ".parquet": read_parquet,
    ".tsv": read_goemotions_tsv,
    ".csv": read_csv_file,
}


def split_name(name: str) -> str:
    return SPLIT_ALIASES.get(name.lower(), name.lower())


def split_files(folder: Path) -> dict[str, Path]:
    """train.parquet / validation.parquet / dev.tsv / dev.csv ... in a folder -> {split: file}."""
    found = {}
    for file in sorted(folder.iterdir()):
        if file.suffix in FILE_READERS and split_name(file.stem) in SPLITS:
            found[split_name(file.stem)] = file
    return found


def _read_flags(spec: SourceSpec, ctx: ReadContext) -> dict[str, Rows]:
    from flags.store import FlagStore

    rows, left_out = FlagStore(Path(spec.ref[len("flags:") :])).training_rows(ctx.unreviewed_flags)
    ctx.notes.append(flag_note(spec.ref, len(rows), left_out, ctx.unreviewed_flags))
    return {"all": rows}


def flag_note(name: str, used: int, left_out: int, unreviewed: bool) -> str:
    if unreviewed:
        return f"{name}: {used} flag(s) used, reviewed or not"
    return f"{name}: {used} reviewed flag(s) used, {left_out} unreviewed left out (--unreviewed-flags adds them)"


def _read_hub(spec: SourceSpec, ctx: ReadContext) -> dict[str, Rows]:
    ref, _, split = spec.ref[len("hub:") :].partition("@")
    repo_id, _, config = ref.partition(":")
    loaded = load_dataset(repo_id, config or None, split=split or None)
    parts = dict(loaded) if isinstance(loaded, DatasetDict) else {split if split else "all": loaded}
    rows: dict[str, Rows] = {}
    for name, ds in parts.items():
        name = split_name(name) if split_name(name) in SPLITS else "all"  # "train[:10%]" is no split of its own
        rows[name] = rows.get(name, []) + _hub_rows(ds, spec, ctx, f"hub:{ref}@{name}")
    return rows


def _hub_rows(ds: Dataset, spec: SourceSpec, ctx: ReadContext, name: str) -> Rows:
    from flags.sync import is_flag_dataset, newest_flags

    if is_flag_dataset(ds):  # the app's synced flags: append-only, newest version of each flag wins
        ds = newest_flags(ds)
        reviewed = [status is not None for status in ds["review_status"]]
        used = ds if ctx.unreviewed_flags else ds.select([i for i, ok in enumerate(reviewed) if ok])
        ctx.notes.append(flag_note(name, len(used), len(ds) - len(used), ctx.unreviewed_flags))
        return rows_from_dataset(used)
    if not goemotions.is_goemotions(ds):
        return rows_from_dataset(ds)
    spread = spec.multi == "spread" and not name.endswith(("@validation", "@test"))
    rows, multi = goemotions.dataset_rows(ds, spread=spread)
    if multi:
        ctx.notes.append(goemotions.multi_note(name, multi, spread))
    return rows


def _read_file(spec: SourceSpec, ctx: ReadContext) -> dict[str, Rows]:
    return {"all": FILE_READERS[spec.path.suffix.lower()](spec.path, spec, ctx)}


def _read_split_folder(spec: SourceSpec, ctx: ReadContext) -> dict[str, Rows]:
    return {
        split: FILE_READERS[file.suffix](file, spec, dataclasses.replace(ctx, split=split))
        for split, file in split_files(spec.path).items()
    }


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "dataset_info.json").is_file()


def _read_saved(spec: SourceSpec, ctx: ReadContext) -> dict[str, Rows]:
    from datasets import load_from_disk

    loaded = load_from_disk(str(spec.path))
    if isinstance(loaded, DatasetDict):
        return {split_name(k): rows_from_dataset(v) for k, v in loaded.items()}
    return {"all": rows_from_dataset(loaded)}


def _is_dir(spec: SourceSpec) -> bool:
    return not spec.ref.startswith(("flags:", "hub:")) and spec.path.is_dir()


def _is_file(suffix: str) -> Callable[[SourceSpec], bool]:
    return lambda spec: spec.path.is_file() and spec.path.suffix.lower() == suffix


SOURCE_KINDS: dict[str, SourceKind] = {
    kind.name: kind
    for kind in (
        SourceKind("flags", "flags:FOLDER (the app's flag store; reviewed flags unless --unreviewed-flags)",
                   lambda s: s.ref.startswith("flags:"), _read_flags),
        SourceKind("hub", "hub:USER/NAME[:CONFIG][@SPLIT] (a Hub dataset; GoEmotions' simplified config mapped)",
                   lambda s: s.ref.startswith("hub:"), _read_hub),
        SourceKind("csv", "FILE.csv (image_path,text,label or text,label; image paths relative to the file)",
                   _is_file(".csv"), _read_file),
        SourceKind("parquet", "FILE.parquet (label + image and/or text; FER+ votes become targets)",
                   _is_file(".parquet"), _read_file),
        SourceKind("goemotions", "FILE.tsv (GoEmotions: text<TAB>label ids<TAB>id, names from labels.txt)",
                   _is_file(".tsv"), _read_file),
        SourceKind("split-folder", "FOLDER of train/validation(dev)/test .csv, .parquet or .tsv files",
                   lambda s: _is_dir(s) and bool(split_files(s.path)), _read_split_folder),
        SourceKind("saved", "FOLDER written by datasets' save_to_disk",
                   lambda s: _is_dir(s) and _is_saved_dataset(s.path), _read_saved),
        SourceKind("csv-folder", "FOLDER with a data.csv",
                   lambda s: _is_dir(s) and (s.path / "data.csv").is_file(),
                   lambda s, ctx: {"all": read_csv(s.path / "data.csv")}),
        SourceKind("image-folder", "FOLDER with one sub-folder of images per emotion (texts.csv adds texts)",
                   _is_dir, lambda s, ctx: {"all": read_image_folder(s.path)}),
    )
}  # fmt: skip


def find_kind(spec: SourceSpec) -> SourceKind:
    """The first kind that recognises `spec` (the registry's order), or a `SourceError` listing them all."""
    for kind in SOURCE_KINDS.values():
        if kind.matches(spec):
            return kind
    usage = "\n  ".join(kind.usage for kind in SOURCE_KINDS.values())
    raise SourceError(f"Data source {spec.ref!r} not found. Give one of:\n  {usage}")
