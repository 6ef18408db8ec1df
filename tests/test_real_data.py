"""Real data sources: FER2013 parquet and GoEmotions TSV (from ../shared/data when present), GoEmotions on the Hub."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from fusion.labels import EMOTIONS
from tests.conftest import SHARED, needs_shared
from train.data import DataError, load_sources
from train.goemotions import EKMAN_MAPPING, to_project_label

# The 27 GoEmotions emotions + neutral, in the paper's emotions.txt order.
GOEMOTIONS_NAMES = [
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
]  # fmt: skip


def test_the_27_to_ekman_mapping_covers_every_emotion_once():
    fine = [name for names in EKMAN_MAPPING.values() for name in names]
    assert sorted(fine) == sorted(GOEMOTIONS_NAMES) and len(fine) == len(set(fine))
    assert to_project_label(["amusement", "joy", "gratitude"]) == "happy"  # one emotion, several labels
    assert to_project_label(["nervousness"]) == "fear" and to_project_label(["realization"]) == "surprise"
    assert to_project_label(["anger", "sadness"]) is None  # spans two emotions: left out


def test_goemotions_tsv_with_ekman_and_with_27_label_names(tmp_path):
    ekman = tmp_path / "ekman"
    ekman.mkdir()
    (ekman / "labels.txt").write_text("anger\ndisgust\nfear\njoy\nneutral\nsadness\nsurprise\n")
    (ekman / "train.tsv").write_text("so happy for you\t3\ta1\nwhat?!\t6\ta2\nugh and yay\t0,3\ta3\nfine\t4\ta4\n")
    (ekman / "dev.tsv").write_text("I hate this\t0\tb1\nlol\t3\tb2\n")
    by_split, report = load_sources([str(ekman)])
    assert {k: len(v) for k, v in by_split.items()} == {"train": 3, "validation": 2}
    names = by_split["train"].features["label"].names
    assert [names[i] for i in by_split["train"]["label"]] == ["happy", "surprise", "neutral"]
    assert report.notes == [f"{ekman / 'train.tsv'}: left out 1 comment(s) whose labels span several emotions"]

    fine = tmp_path / "fine"
    fine.mkdir()
    (fine / "emotions.txt").write_text("\n".join(GOEMOTIONS_NAMES) + "\n")
    ids = {name: i for i, name in enumerate(GOEMOTIONS_NAMES)}
    (fine / "train.tsv").write_text(
        f"thanks a lot\t{ids['gratitude']},{ids['admiration']}\tc1\nhmm\t{ids['curiosity']}\tc2\n"
    )
    rows = load_sources([str(fine / "train.tsv")])[0]["all"]
    assert [names[i] for i in rows["label"]] == ["happy", "surprise"]

    (ekman / "bad.tsv").write_text("broken\t9\tz1\n")
    with pytest.raises(DataError, match="Unknown emotion label '9'"):
        load_sources([str(ekman / "bad.tsv")])


def test_goemotions_simplified_from_the_hub(hub, monkeypatch):
    features = Features({"text": Value("string"), "labels": Sequence(ClassLabel(names=GOEMOTIONS_NAMES)),
                         "id": Value("string")})  # fmt: skip
    ids = {name: i for i, name in enumerate(GOEMOTIONS_NAMES)}
    rows = {
        "train": [
            ("yay", ["joy", "excitement"]),
            ("scary", ["fear"]),
            ("meh", ["neutral"]),
            ("mixed", ["anger", "joy"]),
        ],
        "validation": [("wow", ["surprise"]), ("gross", ["disgust"])],
    }
    DatasetDict(
        {
            split: Dataset.from_dict(
                {
                    "text": [t for t, _ in r],
                    "labels": [[ids[n] for n in ls] for _, ls in r],
                    "id": [str(i) for i in range(len(r))],
                },
                features=features,
            )
            for split, r in rows.items()
        }
    ).push_to_hub("tester/go_emotions", config_name="simplified", token=hub.token)
    monkeypatch.setenv("HF_TOKEN", hub.token)
    train, report = load_sources(["hub:tester/go_emotions:simplified@train"])
    validation = load_sources(["hub:tester/go_emotions:simplified@validation"])[0]
    names = list(EMOTIONS)
    assert [names[i] for i in train["train"]["label"]] == ["happy", "fear", "neutral"]
    assert [names[i] for i in validation["validation"]["label"]] == ["surprise", "disgust"]
    assert report.notes and "left out 1 comment" in report.notes[0]


@needs_shared
def test_fer2013_parquet_folder_loads_its_splits():
    by_split, report = load_sources([str(SHARED / "fer2013")])
    assert {k: len(v) for k, v in by_split.items()} == {"train": 28709, "validation": 3589} and not report.bad
    row = by_split["validation"][0]
    assert (
        row["image"].size == (48, 48)
        and row["text"] == ""
        and by_split["validation"].features["label"].names == list(EMOTIONS)
    )
    one_file = load_sources([str(SHARED / "fer2013" / "validation.parquet")])[0]
    assert len(one_file["all"]) == 3589  # a single file has no split of its own


@needs_shared
def test_goemotions_folder_keeps_single_label_comments():
    by_split, report = load_sources([str(SHARED / "goemotions")])
    sizes = {k: len(v) for k, v in by_split.items()}
    assert sizes["validation"] + int(report.notes[0].split("left out ")[1].split()[0]) == 5426
    assert sizes["train"] > 39_000 and not report.bad
    assert set(by_split["validation"]["label"]) == set(range(7))


@pytest.mark.skipif(not (SHARED / "ferplus").is_dir(), reason="../shared/data/ferplus is not beside this checkout")
def test_ferplus_votes_become_the_targets():
    rows = load_sources([str(SHARED / "ferplus" / "validation.parquet")])[0]["all"]
    assert len(rows) == 3175
    targets = rows["target"]
    assert all(abs(sum(t) - 1) < 1e-5 for t in targets)
    soft = sum(max(t) < 1 for t in targets)
    assert 0.3 < soft / len(rows) < 0.9  # most faces' taggers disagree a little; none of the targets is empty
    agrees = sum(max(range(7), key=t.__getitem__) == label for t, label in zip(targets, rows["label"], strict=True))
    assert agrees / len(rows) > 0.98  # the majority label is the distribution's top emotion


@pytest.mark.skipif(not (SHARED / "text").is_dir(), reason="../shared/data/text is not beside this checkout")
def test_text_corpora_keep_their_splits_and_declared_labels():
    corpus = SHARED / "text" / "dair_emotion"
    by_split, report = load_sources([f"{corpus}#labels=angry,fear,happy,sad,surprise"])
    assert {k: len(v) for k, v in by_split.items()} == {"train": 15746, "validation": 1971} and not report.bad
    assert report.labels[str(corpus)] == ["angry", "fear", "happy", "sad", "surprise"]
    assert not by_split["validation"][0]["label_mask"][EMOTIONS.index("neutral")]
    assert set(load_sources([f"{corpus}#labels=auto"])[1].labels[str(corpus)]) == {
        "angry",
        "fear",
        "happy",
        "sad",
        "surprise",
    }


@pytest.mark.skipif(not (SHARED / "text" / "enisear").is_dir(), reason="../shared/data/text (second batch) is not here")
def test_every_text_corpus_declares_the_labels_its_annotators_gave():
    """The labels the text recipe and the scoring give each corpus (`CORPUS_LABELS`) are those its rows use."""
    from collections import Counter

    from train.scoring import CORPUS_LABELS

    for name, labels in CORPUS_LABELS.items():
        used = Counter()
        for split in ("train", "dev"):
            with (SHARED / "text" / name / f"{split}.csv").open(newline="", encoding="utf-8") as handle:
                used.update(row["label"] for row in csv.DictReader(handle))
        assert set(used) == set(labels), name
    sizes = {name: len(load_sources([str(SHARED / "text" / name)])[0]["train"]) for name in ("enisear", "dailydialog")}
    assert sizes == {"enisear": 569, "dailydialog": 19758}  # ../shared/data/text/README.md


def _slice(source: Path, out: Path, rows: int) -> Path:
    from datasets import load_dataset

    out.parent.mkdir(parents=True, exist_ok=True)
    load_dataset("parquet", data_files=str(source), split="train").select(range(rows)).to_parquet(str(out))
    return out


@needs_shared
def test_a_few_steps_on_real_faces_and_the_predictor_equals_the_raw_encoder(tmp_path):
    """A slice of FER2013 trains through the kit; served, tight crops reach the encoder exactly as they are."""
    import torch

    from fusion.predictor import EmotionPredictor
    from train.train import main as train_main

    data = tmp_path / "fer"
    _slice(SHARED / "fer2013" / "train.parquet", data / "train.parquet", 96)
    _slice(SHARED / "fer2013" / "validation.parquet", data / "validation.parquet", 48)
    metrics = train_main(["--data", str(data), "--image-encoder", "face_resnet18", "--no-pretrained-image",
                          "--text-encoder", "bert-tiny-random", "--epochs", "1", "--batch-size", "32",
                          "--test-share", "0", "--label-smoothing", "0.1", "--optimizer", "sgd",
                          "--output-dir", str(tmp_path / "run")])  # fmt: skip
    assert metrics["held_out_split"] == "validation" and metrics["test"]["image only"]["n"] == 48
    card = (tmp_path / "run" / "README.md").read_text()
    assert "held-out validation split" in card and "split: validation" in card and "split: test" not in card
    assert len(metrics["history"]) == 1 and metrics["history"][0]["cpu_seconds"] > 0
    predictor = EmotionPredictor.load(tmp_path / "run")
    assert predictor.model.preprocess_cfg.image_size == 48 and predictor.model.preprocess_cfg.color_mode == "L"
    faces = load_sources([str(data / "validation.parquet")])[0]["all"]["image"]
    served = predictor.predict_batch([(face, None) for face in faces])
    assert all(p.face_found and p.face_box == (0, 0, 48, 48) for p in served)
    with torch.inference_mode():
        x = torch.stack([predictor.preprocessor.transform(face) for face in faces])
        raw = torch.softmax(predictor.model(pixel_values=x).logits / predictor.model.temperature, dim=-1)
    got = torch.tensor([[p.probabilities[name] for name in predictor.labels] for p in served])
    torch.testing.assert_close(got, raw, atol=1e-6, rtol=0)


@needs_shared
def test_a_few_steps_on_real_comments(tmp_path):
    """GoEmotions through the kit with the text recipe's options (frozen word embeddings, length grouping)."""
    import torch
    from safetensors.torch import load_file

    from train.train import main as train_main

    data = tmp_path / "goemotions"
    data.mkdir()
    for name, rows in (("train.tsv", 64), ("dev.tsv", 32)):
        lines = (SHARED / "goemotions" / name).read_text(encoding="utf-8").splitlines()[:rows]
        (data / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    metrics = train_main(["--data", str(data), "--text-encoder", "minilm-l6", "--image-encoder", "mini_xception",
                          "--freeze-word-embeddings", "--group-by-length", "--epochs", "1", "--batch-size", "16",
                          "--test-share", "0", "--output-dir", str(tmp_path / "run")])  # fmt: skip
    assert metrics["held_out_split"] == "validation" and metrics["test"]["text only"]["n"] > 20
    from transformers import AutoModel

    from fusion.encoders import packaged_minilm_path

    trained = load_file(tmp_path / "run" / "model.safetensors")
    base = AutoModel.from_pretrained(packaged_minilm_path()).state_dict()
    key = "embeddings.word_embeddings.weight"
    assert torch.equal(trained[f"text.model.{key}"], base[key])  # frozen
    assert not torch.equal(trained["text.model.encoder.layer.0.attention.self.query.weight"],
                           base["encoder.layer.0.attention.self.query.weight"])  # fmt: skip


def test_length_grouped_batches_pad_little_and_cover_every_row():
    import torch

    from train.loader import LengthGroupedSampler

    lengths = [int(x) for x in torch.randint(5, 300, (1000,), generator=torch.Generator().manual_seed(1))]
    sampler = LengthGroupedSampler(lengths, 16, torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert len(batches) == len(sampler) and sorted(i for b in batches for i in b) == list(range(1000))
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sum(spread) / len(spread) < 30  # random batches of 16 would spread ~250
    assert batches != list(LengthGroupedSampler(lengths, 16, torch.Generator().manual_seed(2)))
