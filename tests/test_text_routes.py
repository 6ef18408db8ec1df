"""A text branch routed by the kind of text (`train.route`): a routed head answers as its routes weighted by its
router, saves and loads back (also combined with a face branch), and the recipe that routes a grown branch serves
exactly the routes it chose on dev."""

import argparse
import json

import pytest
import torch

from fusion.encoders import DEFAULT_MODEL
from fusion.heads import RoutedHead
from fusion.hub import load_model_folder
from fusion.predictor import EmotionPredictor
from tests.test_text_branch import TEXTS, _logits
from tests.test_text_mix import _rows, _split_folder, _tiny_branch
from train.route import Routes, choose_routes, fit_router


def test_a_routed_head_is_its_routes_weighted_by_the_router_and_shifts_like_one_head():
    torch.manual_seed(0)
    head = RoutedHead(5, 7, 3)
    x = torch.randn(4, 5)
    shares = head.route_weights(x)
    per_route = head.heads(x).view(4, 3, 7)
    assert torch.allclose(shares.sum(1), torch.ones(4))
    assert torch.allclose(head(x), torch.einsum("br,brl->bl", shares, per_route), atol=1e-6)
    shift = torch.randn(7)
    before = head(x)
    with torch.no_grad():
        head.bias.add_(shift)  # as `EmotionFusionModel.shift_logits` does
    assert torch.allclose(head(x), before + shift, atol=1e-5)


def test_the_router_tells_apart_what_differs():
    torch.manual_seed(0)
    centres = torch.randn(3, 16) * 2
    source = torch.arange(3).repeat_interleave(torch.tensor([300, 60, 30]))  # unequal corpora
    feats = centres[source] + torch.randn(len(source), 16)
    router = fit_router(feats, source, 3)
    test = torch.arange(3).repeat_interleave(50)
    found = router(centres[test] + torch.randn(len(test), 16)).argmax(1)
    assert all((found[test == k] == k).float().mean() > 0.9 for k in range(3))  # the small ones are not swamped


def test_each_route_takes_the_prior_its_own_corpus_wants():
    """Two corpora scored by how high the first label's logit is (one wants it up, one down): the ascent gives
    each route the adjustment its corpus wants (tau 0 raises it, tau 1 lowers it, weight 0 keeps all of the
    first model's prior), and a route without dev rows stays at the first model's own answer."""
    one_hot = torch.nn.functional.one_hot(torch.tensor(0), 7).float()
    zeros = torch.zeros(7, 4)
    routes = Routes(zeros, torch.zeros(7), zeros, torch.zeros(7), log_prior=one_hot, own_tau=0.5)
    feats = torch.zeros(6, 4)
    shares = torch.tensor([[1.0, 0, 0]] * 3 + [[0, 1.0, 0]] * 3)

    def score(logits):
        return {"up": float(logits[:3, 0].mean()), "down": -float(logits[3:, 0].mean())}

    chosen, steps = choose_routes(routes, feats, shares, score, free=[0, 1])
    assert chosen == [(0.0, 0.0), (1.0, 0.0), (0.5, 0.0)]
    assert steps[0]["mean"] == 0.0 and steps[-1]["mean"] == pytest.approx(0.5)


def test_a_recipe_that_routes_a_grown_branch_serves_the_routes_it_chose(tmp_path, monkeypatch, fresh_accelerate_state):
    """The routed folder answers as route.json says: the router's shares of each corpus's (tau, weight) pool of
    the two calibrated heads; it loads back through the predictor, also int8 and combined with a face branch."""
    from train import default_assets
    from train.combine import combine
    from train.default_assets import Branch

    data = tmp_path / "data"
    _split_folder(data / "reddit", _rows({"happy": 12, "sad": 12, "neutral": 12}), _rows({"happy": 3, "neutral": 3}))
    _split_folder(data / "talk", _rows({"angry": 12, "happy": 12}), _rows({"angry": 3, "happy": 3}))
    mix = _tiny_branch(("reddit", "talk#labels=angry,happy"))
    grown = _tiny_branch(("reddit",))
    grown = Branch(modality="text", local=grown.local, online=(), recipe=(*grown.recipe, "--text-branch-at", "1"),
                   start="tiny-mix", route=True)  # fmt: skip
    monkeypatch.setattr(default_assets, "BRANCHES", {"tiny-mix": mix, "tiny": grown})
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(data_root=data, online=False, resume=True, epochs=None, run_dir=tmp_path / "branch")
    default_assets.train_branch("tiny", args)
    served = default_assets.served_folder("tiny", args)
    assert served == tmp_path / "branch" / "routed"
    record = json.loads((served / "route.json").read_text())
    assert [r["corpus"] for r in record["routes"]] == ["reddit", "talk"] and record["dev_rows"] == {
        "reddit": 6,
        "talk": 6,
    }
    runs = default_assets.branch_runs(served, "text")
    assert len(runs) == 2 and runs[-1]["route"]["routes"] == record["routes"]

    first, _ = load_model_folder(tmp_path / "runs" / "default-tiny-mix")
    branched, _ = load_model_folder(tmp_path / "branch")
    routed, _ = load_model_folder(served)
    adjusted = json.loads((tmp_path / "runs" / "default-tiny-mix" / "metrics.json").read_text())
    adjusted = adjusted["calibration"]["logit_adjustment"]
    log_prior = torch.tensor([adjusted["prior"][n] for n in first.labels]).log() / first.temperature
    feats = []
    hook = routed.text_head.register_forward_hook(lambda _m, a, _o: feats.append(a[0]))
    _logits(routed)
    hook.remove()
    shares = routed.text_head.route_weights(feats[0])
    a, b = _logits(first) / first.temperature, _logits(branched) / branched.temperature
    per_route = [(1 - r["weight"]) * (a + (adjusted["tau"] - r["tau"]) * log_prior) + r["weight"] * b
                 for r in record["routes"]]  # fmt: skip
    want = torch.softmax(sum(shares[:, k : k + 1] * logits for k, logits in enumerate(per_route)), -1)

    def answers(predictor):
        got = predictor.predict_batch([(None, t) for t in TEXTS])
        return torch.tensor([[p.probabilities[n] for n in first.labels] for p in got])

    assert torch.allclose(answers(EmotionPredictor.load(served)), want, atol=1e-4)
    assert torch.allclose(answers(EmotionPredictor.load(served, quantize="int8")), want, atol=0.05)
    face, tokenizer = combine(served, DEFAULT_MODEL)
    assert torch.allclose(_logits_of(face, tokenizer), torch.log(want), atol=1e-3)


def _logits_of(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).text_logits
    return torch.log_softmax(out, -1)
