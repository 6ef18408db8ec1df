"""Data sources -> datasets.Dataset, bad-row reports, stratified splits."""

import csv

import pytest
from datasets import Dataset, DatasetDict, Features, Value
from PIL import Image

from fusion.labels import EMOTIONS
from train.data import DataError, load_sources, split_dataset


def _write_csv(folder, rows):
    path = folder / "data.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_path", "text", "label"])
        writer.writerows(rows)
    return path


def _image(path, colour=(200, 100, 50)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), colour).save(path)
    return path


def test_csv_source_with_text_only_and_image_only_rows(tmp_path):
    _image(tmp_path / "img" / "a.png")
    path = _write_csv(
        tmp_path, [["img/a.png", "so happy", "joy"], ["", "I am furious", "anger"], ["img/a.png", "", "sad"]]
    )
    by_split, report = load_sources([str(path)])
    ds = by_split["all"]
    assert not report.bad and len(ds) == 3
    assert ds.features["label"].names == list(EMOTIONS)
    assert [ds.features["label"].int2str(x) for x in ds["label"]] == ["happy", "angry", "sad"]
    assert ds[1]["image"] is None and ds[2]["text"] == ""
    assert ds[0]["image"].size == (32, 32) and ds[0]["source"] == str(path)


def test_bad_rows_are_reported_by_row_then_skipped(tmp_path):
    _image(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    rows = [["ok.png", "fine", "happy"]] * 3
    rows += [["ok.png", "x", "excited"], ["missing.png", "y", "sad"], ["broken.png", "z", "fear"], ["", " ", "sad"]]
    rows += [["ok.png", "w", f"bogus{i}"] for i in range(25)]
    path = _write_csv(tmp_path, rows)
    with pytest.raises(DataError) as err:
        load_sources([str(path)])
    message = str(err.value)
    assert "29 bad row(s)" in message
    assert "row 4: Unknown emotion label 'excited'" in message
    assert "row 5: image file not found" in message and "missing.png" in message
    assert "row 6: image cannot be read" in message
    assert "row 7: neither an image nor a text" in message
    assert "... and 9 more" in message and "--skip-bad" in message
    by_split, report = load_sources([str(path)], skip_bad=True)
    assert len(by_split["all"]) == 3 and len(report.bad) == 29


def test_csv_missing_columns_is_clear(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("path,label\na.png,happy\n")
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['image_path', 'text'\]"):
        load_sources([str(path)])


def test_unknown_source_is_clear(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_sources([str(tmp_path / "nope.csv")])


def test_image_folder_with_aliases_and_texts(tmp_path):
    root = tmp_path / "faces"
    for name, colour in (("happiness", (250, 200, 0)), ("anger", (200, 0, 0)), ("surprised", (0, 0, 200))):
        for i in range(2):
            _image(root / name / f"{i}.png", colour)
    (root / "texts.csv").write_text("file_name,text\nhappiness/0.png,what a lovely day\n")
    ds = load_sources([str(root)])[0]["all"]
    assert len(ds) == 6
    labels = sorted({ds.features["label"].int2str(x) for x in ds["label"]})
    assert labels == ["angry", "happy", "surprise"]
    assert sorted(ds["text"]) == [""] * 5 + ["what a lovely day"]


def test_saved_dataset_keeps_its_own_splits(tmp_path):
    features = Features({"text": Value("string"), "label": Value("string")})
    splits = DatasetDict(
        {
            "train": Dataset.from_dict({"text": ["a", "b"], "label": ["happy", "sad"]}, features=features),
            "valid": Dataset.from_dict({"text": ["c"], "label": ["fear"]}, features=features),
        }
    )
    splits.save_to_disk(tmp_path / "saved")
    by_split, _ = load_sources([str(tmp_path / "saved")])
    assert sorted(by_split) == ["train", "validation"]
    assert by_split["validation"][0]["text"] == "c"
    assert by_split["train"][0]["source"].endswith("[train]")


def _balanced(n_per_class: int) -> Dataset:
    rows = {"text": [], "label": []}
    for label in range(7):
        for i in range(n_per_class):
            rows["text"].append(f"{label}-{i}")
            rows["label"].append(EMOTIONS[label])
    return Dataset.from_dict(rows)


def test_split_is_stratified_and_reproducible(tmp_path):
    _balanced(20).save_to_disk(tmp_path / "d")
    by_split, _ = load_sources([str(tmp_path / "d")])
    a = split_dataset(by_split, seed=3)
    b = split_dataset(by_split, seed=3)
    c = split_dataset(by_split, seed=4)
    assert {k: len(v) for k, v in a.items()} == {"train": 112, "validation": 14, "test": 14}
    for name in ("validation", "test"):
        assert sorted(a[name]["label"]) == sorted(list(range(7)) * 2)  # two of each class
        assert a[name]["text"] == b[name]["text"]
    assert a["test"]["text"] != c["test"]["text"]
    assert not set(a["train"]["text"]) & set(a["test"]["text"])


def test_several_sources_concatenate_with_source_column(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = _write_csv(tmp_path / "one", [["", "hello", "neutral"]])
    second = _write_csv(tmp_path / "two", [["", "boo", "fear"], ["", "eek", "fear"]])
    ds = load_sources([str(first), str(second)])[0]["all"]
    assert ds["source"] == [str(first), str(second), str(second)]
