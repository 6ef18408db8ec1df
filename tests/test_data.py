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
    with pytest.raises(DataError, match=r"has the columns \['label', 'path'\]; expected image_path,text,label"):
        load_sources([str(path)])


def test_unknown_source_is_clear_and_lists_every_kind(tmp_path):
    from train.sources import SOURCE_KINDS

    with pytest.raises(DataError, match="not found") as err:
        load_sources([str(tmp_path / "nope.csv")])
    assert all(kind.usage in str(err.value) for kind in SOURCE_KINDS.values())
    assert set(SOURCE_KINDS) >= {
        "csv",
        "parquet",
        "goemotions",
        "flags",
        "hub",
        "saved",
        "image-folder",
        "split-folder",
    }


def test_text_label_csv_folder_keeps_its_splits_and_its_labels(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.csv").write_text("text,label\ni feel great,joy\nso scared,fear\nugh,anger\n")
    (corpus / "dev.csv").write_text('text,label\n"well, wow",surprise\n')
    by_split, report = load_sources([str(corpus)])
    assert {k: len(v) for k, v in by_split.items()} == {"train": 3, "validation": 1}
    assert by_split["validation"][0]["text"] == "well, wow" and by_split["train"][0]["image"] is None
    assert report.labels[str(corpus)] == list(EMOTIONS)  # by default a source could use every label
    by_split, report = load_sources([f"{corpus}#labels=auto"])
    # No neutral, disgust or sad in this corpus: its rows' loss never covers them.
    assert report.labels[str(corpus)] == ["angry", "fear", "happy", "surprise"]
    assert by_split["train"][0]["label_mask"] == [True, False, True, True, False, False, True]
    assert by_split["train"][0]["target"] == [0, 0, 0, 1, 0, 0, 0] and by_split["train"][0]["weight"] == 1.0


def test_source_options_declare_labels_and_weight(tmp_path):
    corpus = tmp_path / "c.csv"
    corpus.write_text("text,label\nhello,happy\n")
    ds, report = load_sources([f"{corpus}#weight=0.5#labels=happy,sad,neutral"])
    row = ds["all"][0]
    assert row["weight"] == 0.5 and report.labels[str(corpus)] == ["happy", "neutral", "sad"]
    with pytest.raises(DataError, match="Unknown option"):
        load_sources([f"{corpus}#colour=red"])
    with pytest.raises(DataError, match="must be a positive number"):
        load_sources([f"{corpus}#weight=0"])


def test_ferplus_votes_become_targets_with_the_outlier_rule(tmp_path):
    from datasets import Features, Sequence
    from datasets import Image as ImageFeature

    _image(tmp_path / "f.png")
    # FER+ order: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
    votes = [[6, 3, 1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1, 1, 5]]
    features = Features({"image": ImageFeature(), "label": Value("string"), "votes": Sequence(Value("int32"))})
    Dataset.from_dict({"image": [str(tmp_path / "f.png")] * 2, "label": ["neutral", "angry"], "votes": votes},
                      features=features).to_parquet(tmp_path / "ferplus.parquet")  # fmt: skip
    rows = load_sources([str(tmp_path / "ferplus.parquet")])[0]["all"]
    neutral, happy = EMOTIONS.index("neutral"), EMOTIONS.index("happy")
    assert rows[0]["target"][neutral] == pytest.approx(6 / 9) and rows[0]["target"][happy] == pytest.approx(3 / 9)
    assert (
        sum(rows[0]["target"]) == pytest.approx(1) and rows[0]["label"] == neutral
    )  # the single surprise vote dropped
    assert rows[1]["target"][EMOTIONS.index("angry")] == 1.0  # only single votes: the majority label stands


def test_goemotions_comments_with_several_emotions_may_become_distributions(tmp_path):
    folder = tmp_path / "ge"
    folder.mkdir()
    (folder / "labels.txt").write_text("anger\ndisgust\nfear\njoy\nneutral\nsadness\nsurprise\n")
    (folder / "train.tsv").write_text("ugh and yay\t0,3\ta1\nyay\t3\ta2\n")
    assert len(load_sources([str(folder / "train.tsv")])[0]["all"]) == 1
    rows, report = load_sources([f"{folder / 'train.tsv'}#multi=spread"])
    target = rows["all"][0]["target"]
    assert target[EMOTIONS.index("angry")] == pytest.approx(0.5) and target[EMOTIONS.index("happy")] == pytest.approx(
        0.5
    )
    assert "kept as even distributions" in report.notes[0]


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
    assert by_split["train"][0]["source"] == str(tmp_path / "saved")  # the source, whatever the split


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
