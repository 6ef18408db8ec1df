"""The hand-written emotion sentences (train/sentences): format, balance, no train/held-out leakage, loader."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from fusion.labels import EMOTIONS

SENTENCES = Path(__file__).resolve().parent.parent / "train" / "sentences"
FILES = {"train": SENTENCES / "train.csv", "heldout": SENTENCES / "heldout.csv"}
MIN_ROWS = {"train": 700, "heldout": 280}
MIN_PER_LABEL = {"train": 100, "heldout": 40}
NEAR_DUPLICATE = 0.6  # token Jaccard above this counts as a near-duplicate
BALANCE = 0.2  # every label's count within +-20% of the mean count


def _rows(name: str) -> list[dict[str, str]]:
    with FILES[name].open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["image_path", "text", "label"]
        return list(reader)


def _tokens(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9']+", text.lower()))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _normalised(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


@pytest.mark.parametrize("name", sorted(FILES))
def test_rows_parse_with_valid_labels_and_texts(name):
    rows = _rows(name)
    assert len(rows) >= MIN_ROWS[name]
    for number, row in enumerate(rows, start=1):
        assert row["image_path"] == "", f"{name} row {number}: text-only rows have no image"
        assert row["text"].strip(), f"{name} row {number}: empty text"
        assert row["text"] == row["text"].strip(), f"{name} row {number}: stray whitespace"
        assert row["label"] in EMOTIONS, f"{name} row {number}: label {row['label']!r}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_labels_are_balanced(name):
    counts = Counter(row["label"] for row in _rows(name))
    assert set(counts) == set(EMOTIONS)
    mean = sum(counts.values()) / len(counts)
    for label, count in counts.items():
        assert count >= MIN_PER_LABEL[name], f"{name}: only {count} {label} rows"
        assert abs(count - mean) <= BALANCE * mean, f"{name}: {count} {label} rows vs mean {mean:.1f}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_no_duplicates_within_a_file(name):
    texts = Counter(_normalised(row["text"]) for row in _rows(name))
    assert [t for t, n in texts.items() if n > 1] == []


def test_no_exact_or_near_duplicates_across_files():
    train = [(row["text"], _tokens(row["text"])) for row in _rows("train")]
    heldout = [(row["text"], _tokens(row["text"])) for row in _rows("heldout")]
    assert {_normalised(t) for t, _ in train}.isdisjoint(_normalised(t) for t, _ in heldout)
    close = [
        (round(_jaccard(a, b), 2), held, seen)
        for held, a in heldout
        for seen, b in train
        if _jaccard(a, b) > NEAR_DUPLICATE
    ]
    assert close == [], f"held-out sentences with a near-duplicate in train.csv: {close[:5]}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_loads_through_the_project_loader(name):
    from train.data import load_sources

    by_split, report = load_sources([str(FILES[name])])
    assert report.bad == []
    dataset = by_split["all"]
    assert len(dataset) >= MIN_ROWS[name]
    assert len(dataset) == len(_rows(name))
    assert all(image is None for image in dataset["image"])
    names = dataset.features["label"].names
    assert Counter(names[i] for i in dataset["label"]) == Counter(row["label"] for row in _rows(name))
