"""Publishing and loading through the real huggingface_hub/datasets clients, against the fake Hub."""

import json
import logging

import pytest
from PIL import Image

from flags.store import FlagStore
from flags.sync import FlagSync
from fusion.hub import ModelSourceError
from fusion.predictor import EmotionPredictor
from space_config.deploy import deploy
from tests.conftest import ASTRONAUT
from train.data import load_sources
from train.export import push_model_folder

INPUTS = [(ASTRONAUT, "What a wonderful surprise!"), (None, "I hate waiting in lines"), (ASTRONAUT, None)]


def _predictions(predictor):
    return [predictor.predict(image=i, text=t).probabilities for i, t in INPUTS]


def _write_metrics(folder, accuracy):
    metrics = {
        "evaluations": [{"split": "test", "input": "image+text", "accuracy": accuracy, "macro_f1": 0.5, "n": 10}]
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def model_folder(tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    _write_metrics(folder, 0.75)
    return folder


def test_push_then_load_in_a_fresh_cache_gives_identical_predictions(hub, model_folder, predictor):
    url = push_model_folder(model_folder, "tester/emotion", token=hub.token)
    assert "tester/emotion" in url
    files = hub.repo_files("model", "tester/emotion")
    assert {"config.json", "model.safetensors", "tokenizer.json", "metrics.json"} <= set(files)
    commit = hub.repo("model", "tester/emotion").commits[hub.repo_commits("model", "tester/emotion")[0]]
    assert "test accuracy 75.0%" in commit.title
    loaded = EmotionPredictor.load("tester/emotion", token=hub.token)
    assert _predictions(loaded) == _predictions(predictor)


def test_second_revision_and_loading_the_first_by_revision(hub, model_folder):
    push_model_folder(model_folder, "tester/emotion", token=hub.token)
    first = hub.repo_commits("model", "tester/emotion")[0]
    import torch

    from fusion.hub import load_model_folder
    from train.export import save_model_folder

    model, tokenizer = load_model_folder(model_folder)
    with torch.no_grad():
        model.head.mlp[-1].bias += 1.0  # a visibly different model
    save_model_folder(model, tokenizer, model_folder)
    _write_metrics(model_folder, 0.8)
    push_model_folder(model_folder, "tester/emotion", token=hub.token)
    assert len(hub.repo_commits("model", "tester/emotion")) >= 2
    old = EmotionPredictor.load("tester/emotion", revision=first, token=hub.token)
    new = EmotionPredictor.load("tester/emotion", token=hub.token)
    assert _predictions(old) != _predictions(new)
    assert new.predict(text="hi").probabilities == EmotionPredictor.load(model_folder).predict(text="hi").probabilities


def test_wrong_token_names_what_to_fix_and_never_echoes_it(hub, model_folder, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ModelSourceError) as err:
        push_model_folder(model_folder, "tester/emotion", token="hf_totally_wrong_token")
    message = str(err.value)
    assert "rejected the token" in message and "HF_TOKEN" in message
    assert "hf_totally_wrong_token" not in message and "hf_totally_wrong_token" not in caplog.text
    with pytest.raises(ModelSourceError, match="not found on the Hub, or your token cannot read it"):
        EmotionPredictor.load("tester/does-not-exist", token=hub.token)
    push_model_folder(model_folder, "tester/emotion", token=hub.token)
    with pytest.raises(ModelSourceError, match="has no revision 'v9'"):
        EmotionPredictor.load("tester/emotion", revision="v9", token=hub.token)


def test_commit_failure_is_retried_and_leaves_no_half_model(hub, model_folder):
    hub.fail_next("POST", r"/api/models/tester/flaky/commit/", status=500, times=1)
    push_model_folder(model_folder, "tester/flaky", token=hub.token)
    commits = hub.repo_commits("model", "tester/flaky")
    files = hub.repo_files("model", "tester/flaky")
    assert "model.safetensors" in files and "config.json" in files  # the retried commit is complete
    assert len(commits) == 2  # the initial commit + exactly one upload; the failed try left nothing

    hub.fail_next("POST", r"/api/models/tester/down/commit/", status=503, times=5)
    with pytest.raises(ModelSourceError, match="answered 503; nothing was changed"):
        push_model_folder(model_folder, "tester/down", token=hub.token)
    assert "model.safetensors" not in hub.repo_files("model", "tester/down")


def test_flags_sync_to_a_dataset_and_train_from_it(hub, tmp_path, monkeypatch):
    store = FlagStore(tmp_path / "flags")
    first = store.add(corrected="joy", text="so good", image=Image.new("RGB", (16, 16), "yellow"), predicted="sad")
    store.add(corrected="fear", text="what was that noise")
    sync = FlagSync(store, "tester/flags", token=hub.token)
    assert sync.sync_once() == 2 and sync.sync_once() == 0  # nothing new, no commit
    assert hub.repo("dataset", "tester/flags").private
    store.review(first.id, "surprise")  # a changed label is uploaded again and wins
    assert sync.sync_once() == 1
    shards = [p for p in hub.repo_files("dataset", "tester/flags") if p.endswith(".parquet")]
    assert len(shards) == 2
    restarted = FlagSync(FlagStore(tmp_path / "flags"), "tester/flags", token=hub.token)
    assert restarted.pending() == []  # sync state survives a restart
    monkeypatch.setenv("HF_TOKEN", hub.token)  # the flag dataset is private: training reads it with the token
    reviewed, report = load_sources(["hub:tester/flags"])  # by default only flags a maintainer reviewed
    rows = next(iter(reviewed.values()))
    names = rows.features["label"].names
    assert [names[x] for x in rows["label"]] == ["surprise"] and rows[0]["image"] is not None
    assert "1 reviewed flag(s) used, 1 unreviewed left out" in report.notes[0]
    every = next(iter(load_sources(["hub:tester/flags"], unreviewed_flags=True)[0].values()))
    assert sorted(names[x] for x in every["label"]) == ["fear", "surprise"]


def test_flag_sync_failure_keeps_flags_for_later(hub, tmp_path):
    store = FlagStore(tmp_path / "flags")
    store.add(corrected="sad", text="rainy again")
    sync = FlagSync(store, "tester/later", token=hub.token)
    hub.fail_next("POST", r"/commit/", status=500, times=1)
    assert sync._safe_sync() == 0 and "HTTP 500" in sync.last_error
    assert len(sync.pending()) == 1
    assert sync._safe_sync() == 1 and sync.pending() == []


def test_deploy_uploads_exactly_the_space_files_and_sets_variables(hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", hub.token)
    deploy("tester/demo", model="tester/emotion", flag_dataset="tester/flags", token=hub.token, set_token_secret=True)
    files = set(hub.repo_files("space", "tester/demo"))
    expected = {"README.md", "requirements.txt", "app.py", "examples/astronaut.jpg", "examples/SOURCES.md"}
    assert expected <= files
    assert not {f for f in files if f.startswith(("train/", "tests/", "bench/", "space_config/", ".ci", "models/"))}
    assert {f.split("/")[0] for f in files if "/" in f} == {"fusion", "flags", "ui", "examples"}
    card = hub.repo_files("space", "tester/demo")["README.md"].decode()
    assert "sdk: gradio" in card and "sdk_version: 6.31.0" in card and "app_file: app.py" in card
    assert "- tester/emotion" in card and hub.token not in card
    assert hub.space_variables("tester/demo") == {
        "EMOTION_MODEL": "tester/emotion",
        "EMOTION_FLAG_DATASET": "tester/flags",
    }
    assert set(hub.space_secrets("tester/demo")) == {"HF_TOKEN"}


def test_train_push_to_hub_publishes_model_and_card(hub, tmp_path, monkeypatch):
    from tests.synthetic import generate
    from train.train import main as train_main

    monkeypatch.setenv("HF_TOKEN", hub.token)
    data = generate(tmp_path / "data", n=70, seed=1, image_size=48)
    train_main(
        ["--data", str(data), "--output-dir", str(tmp_path / "run"), "--text-encoder", "bert-tiny-random",
         "--no-pretrained-image", "--image-size", "48", "--epochs", "1", "--push-to-hub", "tester/trained"]
    )  # fmt: skip
    files = hub.repo_files("model", "tester/trained")
    card = files["README.md"].decode()
    metrics = json.loads(files["metrics.json"])
    accuracy = metrics["test"]["image+text"]["accuracy"]
    assert f"{100 * accuracy:.1f}%" in card and "model-index" in card
    assert "confusion_matrix.png" in files and "model.safetensors" in files
    assert not [f for f in files if f.startswith(("checkpoints/", "best/"))]  # serving files only
    loaded = EmotionPredictor.load("tester/trained")
    assert loaded.predict(text="hello").label in loaded.labels


def test_a_restarted_space_restores_its_flags_from_the_dataset(hub, tmp_path):
    """No persistent disk: the new container's store is empty; the flag dataset brings the review queue back."""
    store = FlagStore(tmp_path / "before")
    first = store.add(corrected="joy", text="so good", image=Image.new("RGB", (16, 16), "yellow"), predicted="sad")
    store.add(corrected="fear", text="what was that noise")
    store.review(first.id, "surprise")
    FlagSync(store, "tester/restore", token=hub.token).sync_once()

    fresh = FlagStore(tmp_path / "after")
    sync = FlagSync(fresh, "tester/restore", token=hub.token)
    assert sync.restore() == 2 and sync.restore() == 0  # nothing new the second time
    restored = {r.id: r for r in fresh.records()}
    assert restored[first.id].review["label"] == "surprise" and restored[first.id].label == "surprise"
    assert fresh.image_path(restored[first.id]).read_bytes() == store.image_path(first).read_bytes()
    assert sync.pending() == []  # restored flags are not uploaded again
    assert FlagSync(FlagStore(tmp_path / "other"), "tester/nothing-yet", token=hub.token).restore() == 0
