"""Short real training runs: the Accelerate loop, the feature cache, resume, multi-process launch."""

import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

from fusion.labels import EMOTIONS
from fusion.predictor import EmotionPredictor
from tests.conftest import ROOT
from train.train import main as train_main

WORDS = {
    "angry": "furious", "disgust": "gross", "fear": "terrified", "happy": "delighted",
    "neutral": "fine", "sad": "heartbroken", "surprise": "astonished",
}  # fmt: skip
COLOURS = [(200, 30, 30), (60, 160, 40), (110, 30, 160), (240, 210, 20), (128, 128, 128), (30, 60, 200), (240, 130, 20)]


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory):
    """A learnable dataset: each emotion has a colour and a word (some rows image-only or text-only)."""
    root = tmp_path_factory.mktemp("colour-data")
    (root / "images").mkdir()
    generator = torch.Generator().manual_seed(0)
    lines = ["image_path,text,label"]
    for i in range(7 * 24):
        label = i % 7
        noise = torch.randint(-25, 26, (3,), generator=generator).tolist()
        colour = tuple(max(0, min(255, c + n)) for c, n in zip(COLOURS[label], noise))
        Image.new("RGB", (48, 48), colour).save(root / "images" / f"{i}.png")
        image = f"images/{i}.png" if i % 5 or not i % 4 else ""  # every 5th row text-only (unless also text-less)
        text = f"honestly I feel {WORDS[EMOTIONS[label]]} about it" if i % 4 else ""  # every 4th image-only
        lines.append(f"{image},{text},{EMOTIONS[label]}")
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    return root / "data.csv"


def _args(data, out, *extra):
    return [
        "--data", str(data), "--output-dir", str(out), "--text-encoder", "bert-tiny-random",
        "--no-pretrained-image", "--image-size", "64", "--batch-size", "16", "--lr-head", "3e-3",
        "--lr-encoder", "1e-3", "--seed", "0", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained(colour_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    metrics = train_main(_args(colour_data, out, "--epochs", "4"))
    return out, metrics


def test_the_data_has_text_only_and_image_only_rows(colour_data):
    rows = colour_data.read_text().splitlines()[1:]
    assert sum(r.startswith(",") for r in rows) == 25 and sum(",," in r for r in rows) == 42


def test_training_beats_chance_on_held_out_data(trained):
    out, metrics = trained
    fused = metrics["test"]["image+text"]
    assert fused["n"] >= 14
    assert fused["accuracy"] > 0.6  # chance is 1/7
    assert metrics["test"]["image only"]["accuracy"] > 0.4 and metrics["test"]["text only"]["n"] > 0
    assert metrics["calibration"]["temperature"] > 0


def test_output_folder_serves_and_documents_itself(trained):
    out, metrics = trained
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "metrics.json",
        "confusion_matrix.png",
        "README.md",
    ):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin"))  # no pickled weights beside the model (checkpoints live in sub-folders)
    card = (out / "README.md").read_text()
    accuracy = metrics["test"]["image+text"]["accuracy"]
    assert f"{100 * accuracy:.1f}%" in card and "model-index" in card and "not for decisions about" in card.lower()
    config = json.loads((out / "config.json").read_text())
    assert config["temperature"] == pytest.approx(metrics["calibration"]["temperature"])
    predictor = EmotionPredictor.load(out)
    result = predictor.predict(image=Image.new("RGB", (48, 48), COLOURS[3]), text="honestly I feel delighted about it")
    assert result.label == "happy"


def test_frozen_encoders_use_the_feature_cache(colour_data, tmp_path, capsys):
    import fusion.model as model_module

    calls = {"image": 0}
    original = model_module.EmotionFusionModel.encode_image

    def counting(self, pixel_values):
        calls["image"] += 1
        return original(self, pixel_values)

    model_module.EmotionFusionModel.encode_image = counting
    try:
        metrics = train_main(_args(colour_data, tmp_path, "--epochs", "3", "--freeze-image", "--freeze-text"))
    finally:
        model_module.EmotionFusionModel.encode_image = original
    assert "Feature cache in use" in capsys.readouterr().out
    history = metrics["history"]
    assert len(history) == 3
    # Cached: 5 train + 1 validation batches, then 2 for the test ablation. Uncached: 9 batches per epoch.
    assert calls["image"] <= 10
    assert metrics["test"]["image+text"]["accuracy"] > 0.3


def test_resume_continues_from_the_last_checkpoint(colour_data, tmp_path, capsys):
    train_main(_args(colour_data, tmp_path, "--epochs", "2"))
    first = json.loads((tmp_path / "checkpoints" / "epoch-2" / "progress.json").read_text())
    metrics = train_main(_args(colour_data, tmp_path, "--epochs", "3", "--resume", "latest"))
    assert "Resumed from" in capsys.readouterr().out
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    assert metrics["history"][:2] == first["history"]
    with pytest.raises(SystemExit, match="no checkpoint"):
        train_main(_args(colour_data, tmp_path / "empty", "--resume", "latest"))


def test_bad_arguments_and_bad_data_are_clear(colour_data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_main(_args(colour_data, tmp_path, "--epochs", "0"))
    assert "--epochs must be at least 1" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("image_path,text,label\n,hello,bored\n")
    with pytest.raises(SystemExit, match="Unknown emotion label 'bored'"):
        train_main(_args(bad, tmp_path / "out"))


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(colour_data, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # torchrun-style launch of 2 processes; --cpu in the script selects gloo (MULTI_CPU).
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "train", *_args(colour_data, tmp_path, "--epochs", "2", "--cpu")]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert json.loads((tmp_path / "training_args.json").read_text())["processes"] == 2
    assert metrics["test"]["image+text"]["n"] >= 14 and (tmp_path / "model.safetensors").is_file()


def _text_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    return path


def _text_args(out, *data, extra=()):
    argv = [arg for d in data for arg in ("--data", str(d))]
    return argv + ["--output-dir", str(out), "--text-encoder", "bert-tiny-random", "--image-encoder", "none",
                   "--fusion-hidden", "--dropout", "0", "--epochs", "2", "--batch-size", "8", "--lr-head", "5e-2",
                   "--lr-encoder", "1e-3", "--weight-decay", "0", "--test-share", "0", "--seed", "0", *extra]  # fmt: skip


def test_a_source_without_a_label_leaves_that_labels_logit_untouched(tmp_path):
    """A corpus that never uses "neutral" gives its logit no gradient: the fused head's and the text head's
    "neutral" weights stay as initialised, while every other label's move. With a corpus that does use it,
    they move too."""
    from accelerate.utils import set_seed

    from fusion.hub import load_model_folder
    from train.config import parse_args
    from train.train import new_model

    words = {e: w for e, w in WORDS.items() if e != "neutral"}
    no_neutral = _text_csv(
        tmp_path / "a" / "data.csv", [(f"I feel {w} {i}", e) for e, w in words.items() for i in range(6)]
    )
    with_neutral = _text_csv(tmp_path / "b" / "data.csv", [(f"it is {i} o'clock", "neutral") for i in range(12)])
    argv = _text_args(tmp_path / "run", f"{no_neutral}#labels=auto")
    train_main(argv)
    set_seed(0)
    initial, _ = new_model(parse_args(argv)[0])
    trained, _ = load_model_folder(tmp_path / "run")
    assert trained.config["text_encoder"] and trained.image is None
    neutral = EMOTIONS.index("neutral")
    for head in ("head.mlp.0", "text_head"):
        for part in ("weight", "bias"):
            before, after = initial.state_dict()[f"{head}.{part}"], trained.state_dict()[f"{head}.{part}"]
            assert torch.equal(before[neutral], after[neutral]), (head, part)
            others = [i for i in range(7) if i != neutral]
            assert not torch.allclose(before[others], after[others])
    metrics = train_main(_text_args(tmp_path / "both", f"{no_neutral}#labels=auto", with_neutral))
    both, _ = load_model_folder(tmp_path / "both")
    assert not torch.equal(
        initial.state_dict()["head.mlp.0.bias"][neutral], both.state_dict()["head.mlp.0.bias"][neutral]
    )
    assert metrics["source_labels"][str(no_neutral)] == [e for e in EMOTIONS if e != "neutral"]


def test_the_masked_loss_gives_no_gradient_outside_a_rows_labels():
    from train.loss import soft_cross_entropy

    logits = torch.randn(4, 7, requires_grad=True)
    targets = torch.nn.functional.one_hot(torch.tensor([0, 3, 5, 6]), 7).float()
    mask = torch.ones(4, 7, dtype=torch.bool)
    mask[:2, 4] = False  # the first two rows come from a corpus without neutral
    soft_cross_entropy(logits, targets, mask, smoothing=0.1).backward()
    assert torch.equal(logits.grad[:2, 4], torch.zeros(2)) and (logits.grad[2:, 4] != 0).all()
    full = torch.nn.functional.cross_entropy(logits.detach(), targets.argmax(1))
    assert soft_cross_entropy(logits.detach(), targets, torch.ones(4, 7, dtype=torch.bool)) == pytest.approx(
        float(full)
    )


def test_training_on_vote_distributions_learns_the_distribution(tmp_path):
    """FER+-style votes: two kinds of face, each voted 6 happy / 4 surprise or 7 sad / 3 angry. Trained on the
    distributions (not the majority), the served probabilities come out near the votes."""
    from datasets import Dataset, Features, Sequence, Value
    from datasets import Image as ImageFeature

    rows = {"image": [], "label": [], "votes": []}
    kinds = [
        ((240, 210, 20), "happy", [0, 6, 4, 0, 0, 0, 0, 0, 0, 0]),
        ((30, 60, 200), "sad", [0, 0, 0, 7, 3, 0, 0, 0, 0, 0]),
    ]
    generator = torch.Generator().manual_seed(0)
    for i in range(96):
        colour, label, votes = kinds[i % 2]
        noise = torch.randint(-20, 21, (3,), generator=generator).tolist()
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (48, 48), tuple(max(0, min(255, c + n)) for c, n in zip(colour, noise))).save(path)
        rows["image"].append(str(path))
        rows["label"].append(label)
        rows["votes"].append(votes)
    features = Features({"image": ImageFeature(), "label": Value("string"), "votes": Sequence(Value("int32"))})
    for split, part in (("train", slice(0, 80)), ("validation", slice(80, 96))):
        Dataset.from_dict({k: v[part] for k, v in rows.items()}, features=features).to_parquet(
            tmp_path / "ferplus" / f"{split}.parquet"
        )
    train_main(["--data", str(tmp_path / "ferplus"), "--output-dir", str(tmp_path / "run"), "--image-encoder", "face_resnet18",
                "--no-pretrained-image", "--text-encoder", "none", "--fusion", "logits", "--epochs", "8", "--batch-size", "16",
                "--image-size", "24",
                "--lr-head", "1e-2", "--lr-encoder", "1e-2", "--test-share", "0", "--seed", "0",
                "--select-by", "loss"])  # fmt: skip
    predictor = EmotionPredictor.load(tmp_path / "run")
    happy = predictor.predict(image=Image.new("RGB", (48, 48), kinds[0][0])).probabilities
    sad = predictor.predict(image=Image.new("RGB", (48, 48), kinds[1][0])).probabilities
    assert happy["happy"] == pytest.approx(0.6, abs=0.12) and happy["surprise"] == pytest.approx(0.4, abs=0.12)
    assert sad["sad"] == pytest.approx(0.7, abs=0.12) and sad["angry"] == pytest.approx(0.3, abs=0.12)
