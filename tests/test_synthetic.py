"""The synthetic paired dataset: deterministic, balanced, ambiguous by design, loadable, and learnable."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fusion.labels import EMOTIONS
from tests.synthetic import draw_face, generate, main, make_sentence, plan


def _rows(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_arguments_give_identical_bytes_in_any_number_of_processes(tmp_path):
    first = generate(tmp_path / "a", n=21, seed=5, image_size=64)
    second = generate(tmp_path / "b", n=21, seed=5, image_size=64, workers=2)
    assert first.read_bytes() == second.read_bytes()
    a, b = _files(first.parent), _files(second.parent)
    assert len(a) == 22 and a == b  # data.csv + 21 PNGs


def test_different_seeds_differ(tmp_path):
    a = generate(tmp_path / "a", n=14, seed=0, image_size=64)
    b = generate(tmp_path / "b", n=14, seed=1, image_size=64)
    assert a.read_bytes() != b.read_bytes()
    assert (a.parent / "images/00000.png").read_bytes() != (b.parent / "images/00000.png").read_bytes()


@pytest.mark.parametrize(
    ("n", "face", "text"), [(700, 0.25, 0.25), (70, 0.25, 0.25), (100, 0.1, 0.4), (50, 0.0, 0.0), (35, 0.5, 0.5)]
)
def test_plan_balances_labels_and_respects_ambiguity_shares(n, face, text):
    rows = plan(n, seed=3, ambiguous_face=face, ambiguous_text=text)
    counts = Counter(label for label, _, _ in rows)
    assert set(counts) == set(EMOTIONS) and max(counts.values()) - min(counts.values()) <= 1
    unclear_face = [label for label, face_clear, _ in rows if not face_clear]
    unclear_text = [label for label, _, text_clear in rows if not text_clear]
    assert abs(len(unclear_face) - n * face) <= 1 and abs(len(unclear_text) - n * text) <= 1
    assert all(f or t for _, f, t in rows), "a row must never be ambiguous in both modalities"
    if n >= 70 and face:  # spread over the labels, not bunched on a few
        per_label = Counter(unclear_face)
        assert all(abs(per_label[e] - n * face / len(EMOTIONS)) <= 2 for e in EMOTIONS)


def test_csv_rows_paths_and_flags(tmp_path):
    csv_path = generate(tmp_path / "out", n=70, seed=2, image_size=64)
    assert csv_path == tmp_path / "out" / "data.csv"
    assert csv_path.read_text(encoding="utf-8").splitlines()[0] == "image_path,text,label,face_clear,text_clear"
    rows = _rows(csv_path)
    assert Counter(r["label"] for r in rows) == dict.fromkeys(EMOTIONS, 10)
    for r in rows:
        path = Path(r["image_path"])
        assert not path.is_absolute() and path.parts[0] == "images"
        with Image.open(csv_path.parent / path) as image:
            assert image.format == "PNG" and image.mode == "RGB" and image.size == (64, 64)
        assert r["text"].strip() and r["face_clear"] in ("True", "False") and r["text_clear"] in ("True", "False")
        assert not (r["face_clear"] == "False" and r["text_clear"] == "False")
    assert sum(r["face_clear"] == "False" for r in rows) == 18 and sum(r["text_clear"] == "False" for r in rows) == 18


def test_both_formats_load_through_the_training_data_code(tmp_path):
    from datasets import ClassLabel, load_from_disk

    from train.data import load_sources

    folder = generate(tmp_path / "disk", n=14, seed=4, image_size=64, fmt="disk")
    ds = load_from_disk(str(folder))
    assert len(ds) == 14 and ds.column_names == ["image", "text", "label", "face_clear", "text_clear"]
    assert isinstance(ds.features["label"], ClassLabel) and ds.features["label"].names == list(EMOTIONS)
    assert ds.features["face_clear"].dtype == "bool" and ds[0]["image"].size == (64, 64)
    csv_path = generate(tmp_path / "csv", n=14, seed=4, image_size=64)
    assert [EMOTIONS[i] for i in ds["label"]] == [r["label"] for r in _rows(csv_path)]
    assert ds["text"] == [r["text"] for r in _rows(csv_path)]
    for source in (str(folder), str(csv_path)):
        loaded, report = load_sources([source])
        assert not report.bad and len(loaded["all"]) == 14


def test_unclear_inputs_carry_no_label_information():
    # At intensity 0 the face is the same whatever the label; so is an unclear sentence.
    faces = {draw_face(e, np.random.default_rng(1), 64, 0.0).tobytes() for e in EMOTIONS}
    assert len(faces) == 1
    assert len({draw_face(e, np.random.default_rng(1), 64, 0.8).tobytes() for e in EMOTIONS}) == len(EMOTIONS)
    assert len({make_sentence(e, np.random.default_rng(7), clear=False) for e in EMOTIONS}) == 1
    assert len({make_sentence(e, np.random.default_rng(7), clear=True) for e in EMOTIONS}) == len(EMOTIONS)
    image = draw_face("surprise", np.random.default_rng(0), 100, 1.0, occlusion="mask")
    assert image.mode == "RGB" and image.size == (100, 100)
    with pytest.raises(ValueError, match="Unknown emotion"):
        make_sentence("bored", np.random.default_rng(0))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n", "6"], "at least 7"),
        (["--ambiguous-face", "1.5"], r"--ambiguous-face must be a share in \[0, 1\]"),
        (["--ambiguous-text", "-0.1"], r"--ambiguous-text must be a share in \[0, 1\]"),
        (["--ambiguous-face", "0.6", "--ambiguous-text", "0.5"], "must be <= 1"),
        (["--format", "parquet"], "invalid choice"),
        (["--seed", "-1"], "--seed must be >= 0"),
        (["--image-size", "16"], "--image-size must be at least 48"),
        (["--n", "ten"], "invalid int value"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_generate_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="--format must be one of csv, disk"):
        generate(tmp_path, n=7, fmt="json")
    with pytest.raises(ValueError, match="must be <= 1"):
        generate(tmp_path, n=7, ambiguous_face=0.5, ambiguous_text=0.75)


def test_cli_writes_a_dataset(tmp_path, capsys):
    path = main(["--out", str(tmp_path / "out"), "--n", "7", "--image-size", "48", "--seed", "9", "--workers", "1"])
    assert path == tmp_path / "out" / "data.csv" and len(_rows(path)) == 7
    assert "Wrote 7 samples" in capsys.readouterr().out


def _pixels(path: Path, flip: bool = False) -> np.ndarray:
    """The centre of the image (where the face is), 16x16 grayscale, standardised."""
    with Image.open(path) as image:
        side = image.width
        crop = image.convert("L").crop((int(0.15 * side), int(0.15 * side), int(0.85 * side), int(0.85 * side)))
    crop = crop.resize((16, 16), Image.BILINEAR)
    if flip:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    x = np.asarray(crop, dtype=float).ravel()
    return (x - x.mean()) / (x.std() + 1e-6)


def test_each_modality_is_learnable_when_clear_and_chance_when_not_and_fusion_wins(tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    csv_path = generate(tmp_path / "data", n=700, seed=11, image_size=96)
    rows = _rows(csv_path)
    y = np.array([EMOTIONS.index(r["label"]) for r in rows])
    face_clear = np.array([r["face_clear"] == "True" for r in rows])
    text_clear = np.array([r["text_clear"] == "True" for r in rows])
    train = np.arange(len(rows)) < 490  # rows come in random label order
    test = ~train
    images = np.stack([_pixels(csv_path.parent / r["image_path"]) for r in rows])
    flipped = np.stack([_pixels(csv_path.parent / r["image_path"], flip=True) for r in rows])  # mirror augmentation
    words = CountVectorizer().fit([r["text"] for r in rows]).transform([r["text"] for r in rows])

    def image_model(index: np.ndarray) -> LogisticRegression:
        x, labels = np.vstack([images[index], flipped[index]]), np.r_[y[index], y[index]]
        return LogisticRegression(C=0.3, max_iter=2000).fit(x, labels)

    def text_model(index: np.ndarray) -> LogisticRegression:
        return LogisticRegression(max_iter=2000).fit(words[index], y[index])

    def accuracy(predicted: np.ndarray, mask: np.ndarray) -> float:
        return float(np.mean(predicted[mask] == y[mask]))

    with threadpool_limits(1):  # BLAS threads only slow these tiny fits down
        image_clear = image_model(np.flatnonzero(train & face_clear)).predict(images)
        text_clear_only = text_model(np.flatnonzero(train & text_clear)).predict(words)
        # Late fusion: a stacker on the two single-modality models' probabilities (out-of-fold on train).
        train_rows = np.flatnonzero(train)
        stack = np.zeros((len(rows), 2 * len(EMOTIONS)))
        for fit, held in StratifiedKFold(5, shuffle=True, random_state=0).split(train_rows, y[train_rows]):
            fit, held = train_rows[fit], train_rows[held]
            stack[held] = np.hstack(
                [image_model(fit).predict_proba(images[held]), text_model(fit).predict_proba(words[held])]
            )
        image_all, text_all = image_model(train_rows), text_model(train_rows)
        stack[test] = np.hstack([image_all.predict_proba(images[test]), text_all.predict_proba(words[test])])
        fused = HistGradientBoostingClassifier(random_state=0).fit(stack[train], y[train]).predict(stack)

    chance = 1 / len(EMOTIONS)
    assert accuracy(image_clear, test & face_clear) >= 0.5
    assert accuracy(image_clear, test & ~face_clear) <= chance + 0.15  # 1/7 up to sampling noise (~50 rows)
    assert accuracy(text_clear_only, test & text_clear) >= 0.8
    assert accuracy(text_clear_only, test & ~text_clear) <= chance + 0.15  # 1/7 up to sampling noise (~50 rows)
    image_only, text_only = accuracy(image_all.predict(images), test), accuracy(text_all.predict(words), test)
    assert image_only < 0.7 and text_only < 0.85  # each modality alone tops out well below 100%
    assert accuracy(fused, test) >= max(image_only, text_only) + 0.05
