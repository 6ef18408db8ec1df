"""Mixing corpora: fixed epoch shares, the class prior behind logit adjustment, distillation from a teacher, and
the text recipe that trains its teacher stage first."""

import argparse
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from fusion.labels import EMOTIONS
from fusion.predictor import EmotionPredictor
from train.config import TrainConfig
from train.data import DataError, load_sources
from train.finish import training_prior
from train.loader import SourceSampler, source_shares


def _split_folder(folder, train_rows, dev_rows=(("fine thanks", "neutral"),)):
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.csv", train_rows), ("dev.csv", dev_rows)):
        (folder / name).write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    return folder


def _rows(counts):
    return [(f"{label} line {i}", label) for label, n in counts.items() for i in range(n)]


def test_fixed_shares_set_each_sources_part_of_an_epoch():
    names = ["big"] * 900 + ["small"] * 100 + ["tiny"] * 25
    assert source_shares(names, 1.0, {"small": 0.5}) == pytest.approx(
        {"small": 0.5, "big": 450 / 925, "tiny": 12.5 / 925}
    )
    assert source_shares(names, 0.0, {"big": 1, "small": 1, "tiny": 2}) == {"big": 0.25, "small": 0.25, "tiny": 0.5}
    sampler = SourceSampler(names, 1.0, 2000, torch.Generator().manual_seed(0), {"tiny": 0.2, "small": 0.3})
    drawn = Counter(names[i] for i in sampler)
    assert drawn == {"tiny": 400, "small": 600, "big": 1000}  # tiny's 25 rows go round 16 times
    tiny = [i for i in sampler if names[i] == "tiny"]
    assert Counter(Counter(tiny).values()) == {16: 25}
    with pytest.raises(DataError, match="add up to 1.1, leaving nothing for \\['big'\\]"):
        source_shares(names, 1.0, {"small": 0.6, "tiny": 0.5})


def test_share_and_teacher_options_are_checked(tmp_path):
    corpus = _split_folder(tmp_path / "c", [("hello", "happy")])
    for bad, message in (("#share=0", "#share .* must be a number in \\(0, 1\\]"), ("#share=2", "in \\(0, 1\\]"),
                         ("#distill=0.5", "need a #teacher"), ("#teacher=x#distill-temperature=0", "positive")):  # fmt: skip
        with pytest.raises(DataError, match=message):
            load_sources([f"{corpus}{bad}"])
    with pytest.raises(DataError, match="not a finished model folder"):
        load_sources([f"{corpus}#teacher={tmp_path / 'nothing'}"])
    flat = tmp_path / "flat.csv"
    flat.write_text("text,label\nhello,happy\n")
    with pytest.raises(DataError, match="no train split of its own"):
        load_sources([f"{flat}#teacher={tmp_path / 'nothing'}"])


def test_a_corpus_without_neutral_does_not_make_neutral_look_rarer(tmp_path):
    """The prior counts a label over the rows that could give it: adding a corpus whose annotators had no
    "neutral" (with the others' proportions) leaves the prior as it was; counted over every row, neutral would
    drop from a half to a third and logit adjustment would raise it."""
    full = _split_folder(tmp_path / "full", _rows({"neutral": 40, "happy": 20, "sad": 20}))
    no_neutral = _split_folder(tmp_path / "no-neutral", _rows({"happy": 60, "sad": 60}), [("boo", "sad")])
    alone = [str(full)]
    both = [str(full), f"{no_neutral}#labels=happy,sad"]

    def prior(specs, temperature=1.0):
        train = load_sources(specs)[0]["train"]
        return training_prior(train, TrainConfig(data=specs, source_temperature=temperature))

    neutral, happy = EMOTIONS.index("neutral"), EMOTIONS.index("happy")
    torch.testing.assert_close(prior(both), prior(alone))
    assert prior(both)[neutral] / prior(both)[happy] == pytest.approx(2.0)  # 40 neutral lines to 20 happy ones
    unmasked = torch.tensor(load_sources(both)[0]["train"]["target"]).double().mean(0)
    assert unmasked[neutral] / unmasked[happy] == pytest.approx(0.5)  # what counting every row said


def test_the_prior_honours_source_weights_and_epoch_shares(tmp_path):
    happy_corpus = _split_folder(tmp_path / "h", _rows({"happy": 30, "sad": 10}))
    sad_corpus = _split_folder(tmp_path / "s", _rows({"happy": 10, "sad": 90}))
    happy, sad = EMOTIONS.index("happy"), EMOTIONS.index("sad")

    def odds(*specs):  # happy against sad in the prior
        train = load_sources(list(specs))[0]["train"]
        prior = training_prior(train, TrainConfig(data=list(specs)))
        return float(prior[happy] / prior[sad])

    assert odds(str(happy_corpus), str(sad_corpus)) == pytest.approx(40 / 100)  # each row once
    assert odds(f"{happy_corpus}#weight=3", str(sad_corpus)) == pytest.approx((3 * 30 + 10) / (3 * 10 + 90))
    shared = odds(f"{happy_corpus}#share=0.5", f"{sad_corpus}#share=0.5")  # half an epoch each
    assert shared == pytest.approx((30 / 40 + 10 / 100) / (10 / 40 + 90 / 100))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A finished text-only model folder (tiny, random) with a fitted temperature of its own."""
    from fusion.encoders import packaged_minilm_path
    from fusion.model import create_model
    from fusion.preprocess import load_tokenizer
    from train.export import save_model_folder

    torch.manual_seed(0)
    model = create_model("bert-tiny-random", "none", fusion="logits").eval()
    with torch.no_grad():
        model.text_head.weight.mul_(40)  # opinions strong enough to tell apart from a uniform guess
    model.set_temperature(1.7)
    return save_model_folder(model, load_tokenizer(packaged_minilm_path()), tmp_path_factory.mktemp("teacher"))


def test_teacher_probabilities_become_part_of_the_training_targets(teacher, tmp_path):
    """Each training row's target is (1 - A) x its label + A x the teacher's served probabilities softened by T,
    over the corpus's own labels; dev rows keep their labels; the teacher runs once and its answers are cached."""
    rows = [("I am so glad today", "happy"), ("this ruins everything", "sad"), ("the bus comes at nine", "neutral")]
    corpus = _split_folder(tmp_path / "c", rows)
    spec = f"{corpus}#labels=happy,sad,neutral#teacher={teacher}#distill=0.4#distill-temperature=3"
    by_split, report = load_sources([spec], cache_dir=tmp_path / "cache")
    served = EmotionPredictor.load(teacher).predict_batch([(None, text) for text, _ in rows])
    own = torch.tensor([name in ("happy", "sad", "neutral") for name in EMOTIONS])
    for row, (_, label), answer in zip(by_split["train"], rows, served, strict=True):
        log_p = torch.tensor([answer.probabilities[name] for name in EMOTIONS]).log()
        soft = torch.softmax((log_p / 3).masked_fill(~own, float("-inf")), dim=-1)
        expected = 0.4 * soft + 0.6 * torch.nn.functional.one_hot(torch.tensor(EMOTIONS.index(label)), 7)
        torch.testing.assert_close(torch.tensor(row["target"]), expected.float(), atol=1e-5, rtol=0)
        assert row["label"] == EMOTIONS.index(label) and 0.6 < max(row["target"]) < 1
    assert by_split["validation"][0]["target"] == [0, 0, 0, 0, 1, 0, 0]
    assert "0.6 own + 0.4 teacher" in report.notes[0]
    (cached,) = (tmp_path / "cache").iterdir()
    from safetensors.torch import load_file, save_file

    uniform = torch.full((3, 7), -2.0)
    save_file({"log_probs": uniform}, str(cached))  # a cache that disagrees with the teacher: it is what is read
    again = load_sources([spec], cache_dir=tmp_path / "cache")[0]["train"]
    assert again[0]["target"] == pytest.approx([0, 0, 0, 0.6 + 0.4 / 3, 0.4 / 3, 0.4 / 3, 0])
    assert load_file(str(cached))["log_probs"].shape == (3, 7)


def _tiny_branch(local, teacher=None):
    from train.default_assets import Branch

    recipe = ("--text-encoder", "bert-tiny-random", "--image-encoder", "none", "--fusion", "logits",
              "--epochs", "1", "--batch-size", "8", "--seed", "0", "--logit-adjustment")  # fmt: skip
    return Branch(modality="text", local=local, online=(), recipe=recipe, teacher=teacher, start=teacher)


def test_a_recipe_with_a_teacher_trains_it_first_and_records_it(tmp_path, monkeypatch, fresh_accelerate_state):
    """The teacher stage is trained (into runs/default-NAME) when missing, the student starts from it and learns
    from its answers on the marked corpus; the student's record lists the teacher's run before its own."""
    from train import default_assets

    data = tmp_path / "data"
    _split_folder(data / "reddit", _rows({"happy": 8, "sad": 8, "neutral": 8}), _rows({"happy": 2, "sad": 2}))
    _split_folder(data / "talk", _rows({"angry": 8, "happy": 8}), _rows({"angry": 2, "happy": 2}))
    branches = {
        "tiny-teacher": _tiny_branch(("reddit",)),
        "tiny": _tiny_branch(("reddit#teacher={teacher}#share=0.5", "talk#labels=angry,happy"), "tiny-teacher"),
    }
    monkeypatch.setattr(default_assets, "BRANCHES", branches)
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(data_root=data, online=False, resume=True, epochs=None, run_dir=tmp_path / "student")
    default_assets.train_branch("tiny", args)
    teacher = tmp_path / "runs" / "default-tiny-teacher"
    assert (teacher / "model.safetensors").is_file() and (tmp_path / "student" / "model.safetensors").is_file()
    student = json.loads((tmp_path / "student" / "training_args.json").read_text())
    assert student["init_from"] == "runs/default-tiny-teacher"
    assert student["data"][0] == f"{data}/reddit#teacher=runs/default-tiny-teacher#share=0.5"
    assert list((tmp_path / "student" / "teacher_targets").glob("teacher-*.safetensors"))
    runs = default_assets.branch_runs(tmp_path / "student", "text")
    assert [r["data"] for r in runs] == [[f"{data}/reddit"], student["data"]]
    prior = json.loads((tmp_path / "student" / "metrics.json").read_text())["calibration"]["logit_adjustment"]["prior"]
    assert list(prior) == list(EMOTIONS) and sum(prior.values()) == pytest.approx(1)


def test_the_text_mix_names_every_corpus_with_its_labels_and_share(tmp_path):
    from train.default_assets import BRANCHES, train_argv
    from train.scoring import CORPUS_LABELS
    from train.sources import SourceSpec, fixed_shares

    for source in BRANCHES["text-mix"].local:  # the recipe refuses data it cannot find
        if not Path(source).is_absolute():  # the project's own sentences are in the repository
            (tmp_path / source.split("#")[0]).mkdir(parents=True)
    args = argparse.Namespace(data_root=tmp_path, online=False, resume=False, epochs=None, run_dir=tmp_path / "r")
    argv = train_argv("text-mix", args)
    data = [argv[i + 1] for i, a in enumerate(argv) if a == "--data"]
    specs = {SourceSpec.parse(d).path.name: SourceSpec.parse(d) for d in data}
    for name, labels in CORPUS_LABELS.items():
        assert specs[name].labels == (labels if len(labels) < 7 else "all"), name
    assert specs["goemotions"].teacher == "runs/default-text-goemotions" == argv[argv.index("--init-from") + 1]
    assert sum(fixed_shares(data).values()) == pytest.approx(1.0) and len(fixed_shares(data)) == len(data) == 10
    assert BRANCHES["text-mix"].teacher == BRANCHES["text-mix"].start == "text-goemotions"
    assert not BRANCHES["text-mix"].serves and BRANCHES["text"].start == "text-mix" and BRANCHES["text"].route
