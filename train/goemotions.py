"""GoEmotions (Demszky et al., ACL 2020; CC BY 4.0) in the project's 7 emotions.

Two forms are read:
- the paper's TSV files (`text<TAB>label ids<TAB>comment id`, no header), with a `labels.txt` (or the
  paper's `emotions.txt` / `ekman_labels.txt`) beside them naming the ids; without one, the ids are
  the Ekman grouping's (anger, disgust, fear, joy, neutral, sadness, surprise);
- a `datasets.Dataset` with a `labels` sequence over the 27 emotions + neutral (the Hub's
  "simplified" config), mapped to Ekman's 6 + neutral with the paper's own grouping.

Multi-label rule: a comment whose labels all fall in ONE of the 7 emotions (e.g. joy + amusement ->
happy) has that label. Comments whose labels span two or more emotions (~8% of the Ekman data) are left
out and counted, or, with `spread` (`--data PATH#multi=spread`), kept with an even distribution over
those emotions as their target. The project's dev scores are on single-label rows.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from fusion.labels import EMOTIONS, parse_label

EKMAN_NAMES = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
# The paper's ekman_mapping.json (27 emotions -> 6) plus neutral.
EKMAN_MAPPING: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": (
        "joy",
        "amusement",
        "approval",
        "excitement",
        "gratitude",
        "love",
        "optimism",
        "relief",
        "pride",
        "admiration",
        "desire",
        "caring",
    ),  # fmt: skip
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}
TO_PROJECT: dict[str, str] = {
    fine: EMOTIONS[parse_label(ekman)] for ekman, fines in EKMAN_MAPPING.items() for fine in fines
}
NAME_FILES = ("labels.txt", "ekman_labels.txt", "emotions.txt")


def to_project_label(names: list[str]) -> str | None:
    """The one project emotion these GoEmotions (or Ekman) label names mean, or None if they span several."""
    found = project_emotions(names)
    return found[0] if len(found) == 1 else None


def project_emotions(names: list[str]) -> list[str]:
    """The project emotions these GoEmotions (or Ekman) label names mean, in the project's order."""
    found = {TO_PROJECT.get(name) or EMOTIONS[parse_label(name)] for name in names}
    return [e for e in EMOTIONS if e in found]


def row(text: str, names: list[str], spread: bool) -> dict[str, Any] | None:
    """A row with a label, or with an even target over several emotions (`spread`); None when left out."""
    found = project_emotions(names)
    if len(found) == 1:
        return {"image": None, "text": text, "label": found[0]}
    if not spread or not found:
        return None
    return {"image": None, "text": text, "label": found[0], "target": {e: 1 / len(found) for e in found}}


def multi_note(name: str, count: int, spread: bool) -> str:
    if spread:
        return f"{name}: {count} comment(s) whose labels span several emotions kept as even distributions"
    return f"{name}: left out {count} comment(s) whose labels span several emotions"


def label_names(folder: Path) -> list[str]:
    for name in NAME_FILES:
        path = folder / name
        if path.is_file():
            return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return list(EKMAN_NAMES)


def read_tsv(path: Path, spread: bool = False) -> tuple[list[dict[str, Any]], int]:
    """(rows, comments spanning several emotions) of one GoEmotions TSV file; unknown ids go through as bad labels."""
    names = label_names(path.parent)
    rows, multi = [], 0
    with path.open(newline="", encoding="utf-8") as handle:
        for fields in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            text, ids = (fields + ["", ""])[:2]
            try:
                found = row(text, [names[int(i)] for i in ids.split(",") if i.strip()], spread)
            except (ValueError, IndexError):
                rows.append({"image": None, "text": text, "label": ids})  # reported as a bad row by the caller
                continue
            multi += found is None or "target" in found
            if found is not None:
                rows.append(found)
    return rows, multi


def is_goemotions(ds) -> bool:
    """A dataset with a `labels` sequence over GoEmotions' names (the Hub's "simplified" config)."""
    feature = ds.features.get("labels")
    names = getattr(getattr(feature, "feature", None), "names", None)
    return bool(names) and set(TO_PROJECT) <= set(names)


def dataset_rows(ds, spread: bool = False) -> tuple[list[dict[str, Any]], int]:
    """(rows, comments spanning several emotions) of a GoEmotions `datasets.Dataset`."""
    names = ds.features["labels"].feature.names
    rows, multi = [], 0
    for text, ids in zip(ds["text"], ds["labels"], strict=True):
        found = row(text, [names[i] for i in ids], spread)
        multi += found is None or "target" in found
        if found is not None:
            rows.append(found)
    return rows, multi
