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
        image = f"images/{i}.png" if i % 5 else ""
        text = f"honestly I feel {WORDS[EMOTIONS[label]]} about it" if i % 4 else ""
        lines.append(f"{image or f'images/{i}.png'},{text},{EMOTIONS[label]}")
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
