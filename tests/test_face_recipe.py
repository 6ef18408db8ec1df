"""The face recipe's parts: a cut-out's surround found and randomised, the class prior chosen on a balanced set,
and the default's recipe that refuses to run without its data and keeps or states its scores."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fusion.augment import InnerFace, RandomSurround, oval_mask, surround_mask
from fusion.encoders import DEFAULT_MODEL, image_spec
from tests.conftest import ASTRONAUT, SHARED


def astronaut_face(side: int) -> torch.Tensor:
    """The astronaut's face as the served detector crops it, gray, (1, side, side) uint8."""
    from fusion.faces import crop_face

    crop = crop_face(Image.open(ASTRONAUT).convert("RGB"), margin=0.1, detector="yunet").image
    return torch.from_numpy(np.array(crop.convert("L").resize((side, side))))[None]


def cut_out(seed: int = 0, side: int = 64) -> torch.Tensor:
    """A (1, side, side) uint8 face-like texture set on black outside an oval, as effectnet's faces are."""
    rng = np.random.default_rng(seed)
    face = torch.from_numpy(rng.integers(60, 220, (1, side, side), dtype=np.uint8))
    face[0][torch.from_numpy(oval_mask(side, side, torch.Generator().manual_seed(seed)))] = 0
    return face


def test_a_cut_outs_surround_is_found_and_an_ordinary_photo_has_none():
    face = cut_out()
    mask = surround_mask(face)
    assert mask.any() and (face[0][torch.from_numpy(mask)] == 0).all()
    assert mask[0, 0] and mask[-1, -1] and not mask[32, 32]
    assert not surround_mask(astronaut_face(64)).any()


def test_random_surround_replaces_the_black_and_keeps_the_face():
    face = cut_out()
    mask = torch.from_numpy(surround_mask(face))
    inner = torch.from_numpy(~np.asarray(torch.nn.functional.max_pool2d(mask[None].float(), 5, 1, 2)[0].bool()))
    torch.manual_seed(0)
    outs = [RandomSurround()(face) for _ in range(40)]
    assert all(torch.equal(o[0][inner], face[0][inner]) for o in outs)  # the face, away from its softened edge
    filled = [float(o[0][mask].float().mean()) for o in outs]
    assert sum(f > 8 for f in filled) >= 25 and sum(f < 1 for f in filled) >= 2  # mostly filled, sometimes black
    assert len({round(f) for f in filled}) > 10  # many different surrounds


def test_ordinary_faces_become_cut_outs_now_and_then():
    photo = astronaut_face(48)
    torch.manual_seed(0)
    changed = sum(not torch.equal(RandomSurround(cut_out=0.15)(photo), photo) for _ in range(400))
    assert 30 <= changed <= 90  # 15% of 400 = 60


def test_inner_face_crops_cut_outs_only():
    assert InnerFace()(cut_out()).shape == (1, 51, 51)
    photo = torch.full((1, 48, 48), 120, dtype=torch.uint8)
    assert torch.equal(InnerFace()(photo), photo)


@pytest.mark.skipif(not (SHARED / "effectnet").is_dir(), reason="../shared/data/effectnet is not beside this checkout")
def test_effectnets_faces_are_cut_outs_and_fers_are_not():
    from train.data import load_sources

    def share(path: Path) -> float:
        rows = load_sources([str(path)])[0]["all"].shuffle(seed=0).select(range(200))
        tensors = [torch.from_numpy(np.array(image.convert("L")))[None] for image in rows["image"]]
        return sum(bool(surround_mask(t).any()) for t in tensors) / len(tensors)

    assert share(SHARED / "effectnet" / "validation.parquet") > 0.9
    assert share(SHARED / "ferplus" / "validation.parquet") < 0.06  # dark hair or backgrounds: 3.7% of 300


def test_the_prior_adjustment_is_chosen_on_the_balanced_source():
    """Logits skewed toward class 0 on both sources: chosen on the balanced source's rows, tau removes the skew."""
    from train.config import parse_args
    from train.evaluate import Collected
    from train.finish import adjustment_score
    from train.metrics import choose_logit_adjustment, classification_metrics

    gen = torch.Generator().manual_seed(0)
    labels = torch.cat([torch.zeros(300, dtype=torch.long), torch.arange(7).repeat(100)])  # skewed, then balanced
    source = torch.cat([torch.zeros(300, dtype=torch.long), torch.ones(700, dtype=torch.long)])
    logits = torch.nn.functional.one_hot(labels, 7).float() * 1.5 + torch.randn(1000, 7, generator=gen)
    logits[:, 0] += 1.5
    prior = torch.tensor([0.7] + [0.05] * 6)
    collected = Collected(logits, labels, torch.nn.functional.one_hot(labels, 7).float(), torch.ones(1000, 7).bool(),
                          source)  # fmt: skip
    config, _ = parse_args(["--data", "x", "--output-dir", "y", "--logit-adjustment", "--adjust-on", "balanced"])
    ids = {"skewed": 0, "balanced": 1}
    score = adjustment_score(collected, [str(i) for i in range(7)], ids, {}, config)
    tau, report = choose_logit_adjustment(logits, labels, prior, score=score)
    balanced = source == 1
    before = classification_metrics(logits[balanced], labels[balanced], list("0123456"))["mean_recall"]
    after = classification_metrics((logits - tau * prior.log())[balanced], labels[balanced], list("0123456"))
    assert tau > 0.3 and after["mean_recall"] > before + 0.1
    assert report["chosen_by"].startswith("mean per-class recall") and report["score_at_tau"] == after["mean_recall"]
    config, _ = parse_args(["--data", "x", "--output-dir", "y", "--adjust-on", "nowhere"])
    with pytest.raises(ValueError, match="names no validation source"):
        adjustment_score(collected, [str(i) for i in range(7)], ids, {}, config)


def test_the_face_encoder_starts_from_scratch():
    """The registry gives the face ResNet no weights: a recipe never starts from the default it replaces."""
    assert image_spec("face_resnet18").weights is None


def recipe_args(tmp_path: Path, **values) -> argparse.Namespace:
    return argparse.Namespace(**{"data_root": tmp_path / "nothing", "online": False, **values})


def test_recipes_refuse_to_run_without_their_data(tmp_path):
    from train.default_assets import sources

    with pytest.raises(SystemExit, match="face recipe needs .*ferplus.*effectnet"):
        sources("face", recipe_args(tmp_path))
    with pytest.raises(SystemExit, match="face recipe has no Hub copy of all its data"):
        sources("face", recipe_args(tmp_path, online=True))
    with pytest.raises(SystemExit, match="text recipe has no Hub copy .*crowdflower"):
        sources("text", recipe_args(tmp_path, online=True))
    with pytest.raises(SystemExit, match=r"or --online"):
        sources("text-goemotions", recipe_args(tmp_path))
    assert all(ref.startswith("hub:") for ref in sources("text-goemotions", recipe_args(tmp_path, online=True)))


def test_build_keeps_the_scores_of_unchanged_weights_and_says_when_a_folder_is_unscored(tmp_path, capsys):
    from train.default_assets import build

    folder = tmp_path / "default"
    build(DEFAULT_MODEL, DEFAULT_MODEL, folder, data_root=None)
    card = (folder / "README.md").read_text()
    assert "has not been scored" in card and not (folder / "metrics.json").exists()
    assert "Not scored" in capsys.readouterr().out
    (folder / "metrics.json").write_text(json.dumps({"evaluations": []}))
    shutil.copyfile(folder / "README.md", tmp_path / "card.md")
    build(folder, folder, folder, data_root=None)
    assert "metrics.json, README.md kept" in capsys.readouterr().out
    assert (folder / "metrics.json").is_file() and (folder / "README.md").read_text() == card


def test_weights_compare_by_content_not_by_the_order_of_their_metadata(tmp_path):
    """safetensors writes its metadata keys in an order that changes between processes; the same weights must
    still count as the same, and one changed value as a change."""
    import struct

    from safetensors.torch import save_file

    from train.default_assets import same_content

    weights = {"w": torch.arange(6, dtype=torch.float32)}
    save_file(weights, str(tmp_path / "a.safetensors"), {"format": "pt", "note": "x"})
    data = (tmp_path / "a.safetensors").read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    header["__metadata__"] = dict(reversed(header["__metadata__"].items()))
    reordered = json.dumps(header, separators=(",", ":")).encode().ljust(size)
    (tmp_path / "b.safetensors").write_bytes(data[:8] + reordered + data[8 + size :])
    assert (tmp_path / "a.safetensors").read_bytes() != (tmp_path / "b.safetensors").read_bytes()
    assert same_content(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    save_file({"w": weights["w"] + 1}, str(tmp_path / "c.safetensors"), {"format": "pt", "note": "x"})
    assert not same_content(tmp_path / "a.safetensors", tmp_path / "c.safetensors")


def test_the_record_names_the_data_as_every_clone_has_it(monkeypatch):
    """A recipe run on the project's data records `../shared/data/...` and `python -m ...`, not this machine's
    paths, so the committed training record reads the same on every clone."""
    from train import default_assets
    from train.finish import _command

    if not default_assets.DATA_ROOT.is_dir():
        pytest.skip(f"needs the project's data at {default_assets.DATA_ROOT}")
    monkeypatch.chdir(DEFAULT_MODEL.parent.parent.parent)  # the repository root
    refs = default_assets.sources("face", recipe_args(Path("."), data_root=default_assets.DATA_ROOT))
    assert refs == ["../shared/data/ferplus", "../shared/data/fer2013#weight=0.25", "../shared/data/effectnet"]
    import sys
    from types import SimpleNamespace

    monkeypatch.setattr(sys, "argv", [str(Path("train/default_assets.py").resolve()), "face", "--resume"])
    monkeypatch.setitem(sys.modules, "__main__", SimpleNamespace(__spec__=SimpleNamespace(name="train.default_assets")))
    assert _command() == "python -m train.default_assets face --resume"
    monkeypatch.setitem(sys.modules, "__main__", SimpleNamespace(__spec__=SimpleNamespace(name="train.__main__")))
    assert _command() == "python -m train face --resume"
    monkeypatch.setitem(sys.modules, "__main__", SimpleNamespace(__spec__=None))  # `python train/default_assets.py`
    assert _command() == "python train/default_assets.py face --resume"


def test_the_card_gives_every_scored_set_its_own_model_index_entry(tmp_path):
    """The Hub groups results by dataset type: local sets each need their own, or their scores merge into one."""
    import yaml

    card = (DEFAULT_MODEL / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    names = [r["dataset"]["name"] for r in meta["model-index"][0]["results"]]
    assert len(names) == len(set(names)) == 8
    assert all(len(r["metrics"]) == 2 for r in meta["model-index"][0]["results"])
