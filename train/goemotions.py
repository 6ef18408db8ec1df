"""GoEmotions (Demszky et al., ACL 2020; CC BY 4.0) in the project's 7 emotions.

Two forms are read:
- the paper's TSV files (`text<TAB>label ids<TAB>comment id`, no header), with a `labels.txt` (or the
  paper's `emotions.txt` / `ekman_labels.txt`) beside them naming the ids; without one, the ids are
  the Ekman grouping's (anger, disgust, fear, joy, neutral, sadness, surprise);
- a `datasets.Dataset` with a `labels` sequence over the 27 emotions + neutral (the Hub's
  "simplified" config), mapped to Ekman's 6 + neutral with the paper's own grouping.

Multi-label rule: a comment is kept only if all its labels fall in ONE of the 7 emotions (e.g. joy +
amusement -> happy); comments whose labels span two or more emotions (~8% of the Ekman data) are
left out and counted, because a single-label softmax model has no right answer for them. The
project's dev scores are on single-label rows for the same reason.
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
    found = {TO_PROJECT.get(name) or EMOTIONS[parse_label(name)] for name in names}
    return found.pop() if len(found) == 1 else None


def label_names(folder: Path) -> list[str]:
    for name in NAME_FILES:
        path = folder / name
        if path.is_file():
            return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return list(EKMAN_NAMES)


def read_tsv(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(rows, multi-label rows left out) of one GoEmotions TSV file; unknown ids go through as bad labels."""
    names = label_names(path.parent)
    rows, multi = [], 0
    with path.open(newline="", encoding="utf-8") as handle:
        for fields in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            text, ids = (fields + ["", ""])[:2]
            try:
                label = to_project_label([names[int(i)] for i in ids.split(",") if i.strip()])
            except (ValueError, IndexError):
                rows.append({"image": None, "text": text, "label": ids})  # reported as a bad row by the caller
                continue
            if label is None:
                multi += 1
                continue
            rows.append({"image": None, "text": text, "label": label})
    return rows, multi


def is_goemotions(ds) -> bool:
    """A dataset with a `labels` sequence over GoEmotions' names (the Hub's "simplified" config)."""
    feature = ds.features.get("labels")
    names = getattr(getattr(feature, "feature", None), "names", None)
    return bool(names) and set(TO_PROJECT) <= set(names)


def dataset_rows(ds) -> tuple[list[dict[str, Any]], int]:
    """(rows, multi-label rows left out) of a GoEmotions `datasets.Dataset`."""
    names = ds.features["labels"].feature.names
    rows, multi = [], 0
    for text, ids in zip(ds["text"], ds["labels"], strict=True):
        label = to_project_label([names[i] for i in ids])
        if label is None:
            multi += 1
            continue
        rows.append({"image": None, "text": text, "label": label})
    return rows, multi
