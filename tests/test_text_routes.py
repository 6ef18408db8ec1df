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
from fusion.preprocess import Preprocessor
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
    hook = routed.text_head.register_forward_hook(lambda _m, a, _o: feats.append(a))
    _logits(routed)
    hook.remove()
    assert routed.preprocess_cfg.text_ngrams == record["ngram_buckets"] > 0  # the router reads n-grams too
    shares = routed.text_head.route_weights(*feats[0])
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

    # bench/route_choice.py chooses the routes again from the folder: its served rule gives the folder's own
    from bench.route_choice import main as route_choice

    rules = route_choice(["--routed", str(served), "--target", "reddit", "--counts", "2"])
    mean, _, noise, _, _ = rules["rows"]
    assert [row["rule"] for row in rules["rows"]] == [
        "mean", "reddit x2", "reddit, others within 1 SE", "true corpus", "branched path alone"]  # fmt: skip
    assert rules["mean_rule_is_served"] and rules["dev_rows"] == record["dev_rows"]
    assert {k: mean[k] for k in record["dev_rows"]} == pytest.approx(record["dev_macro_f1"]["routed"], abs=1e-6)
    first_scores = record["dev_macro_f1"]["first"]
    assert noise["talk"] >= first_scores["talk"] - (first_scores["talk"] * (1 - first_scores["talk"]) / 6) ** 0.5
    assert noise["reddit"] >= first_scores["reddit"] - 1e-9  # it starts from the first run's own answer
    assert sum(rules["target_shares"].values()) == pytest.approx(1.0)  # the target's rows were found


def _logits_of(model, tokenizer) -> torch.Tensor:
    batch = Preprocessor(model.preprocess_cfg, tokenizer).tokenize(TEXTS)
    with torch.no_grad():
        out = model(**batch).text_logits
    return torch.log_softmax(out, -1)


def test_hashed_ngrams_are_the_same_in_every_process_and_pad_cleanly():
    import subprocess
    import sys

    from fusion.ngrams import hashed_ngrams, ngram_batch

    text = "Wow, [NAME] – that’s sooo good!!"
    ids, weights = hashed_ngrams(text, 4096)
    code = f"from fusion.ngrams import hashed_ngrams; print([a.tolist() for a in hashed_ngrams({text!r}, 4096)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": "123"})  # fmt: skip
    assert other.stdout.strip() == str([ids.tolist(), weights.tolist()])  # a salted hash() would differ here
    assert ((1 <= ids) & (ids <= 4096)).all() and abs(float((weights**2).sum()) - 1) < 1e-6
    batch = ngram_batch([text, ""], 4096)
    assert batch["text_ngrams"].shape == (2, len(ids)) and not batch["text_ngrams"][1].any()
    assert not batch["text_ngram_weights"][1].any()


def test_the_ngram_router_tells_apart_corpora_that_differ_only_on_the_surface():
    from fusion.ngrams import hashed_ngrams
    from train.route import fit_ngram_router

    words = ["i love this", "that is so sad", "what a day", "no way", "this makes me angry", "fine thanks"]
    styles = [lambda t: t, lambda t: t.capitalize() + "!!", lambda t: "[NAME] " + t.replace("a", "’a")]
    rows = [(style(w), k) for k, style in enumerate(styles) for w in words]
    table, bias = fit_ngram_router([hashed_ngrams(t, 512) for t, _ in rows], torch.tensor([k for _, k in rows]), 3, 512)
    for text, k in [("how nice", 0), ("How nice!!", 1), ("[NAME] how n’aice", 2)]:
        ids, weights = hashed_ngrams(text, 512)
        scores = table(torch.tensor(ids)[None], per_sample_weights=torch.tensor(weights)[None]) + bias
        assert int(scores.argmax()) == k, text  # the same words, told apart by how they are written


def test_a_routed_head_that_reads_ngrams_needs_them_only_where_there_is_text():
    torch.manual_seed(0)
    head = RoutedHead(5, 7, 3, ngram_buckets=16)
    with torch.no_grad():
        head.ngrams.weight.normal_()
    x, ids, weights = torch.randn(2, 5), torch.tensor([[3, 9, 0], [5, 0, 0]]), torch.tensor([[0.6, 0.8, 0], [1, 0, 0]])
    want = (head.router(x) + torch.stack([0.6 * head.ngrams.weight[3] + 0.8 * head.ngrams.weight[9],
                                          head.ngrams.weight[5]])).softmax(-1)  # fmt: skip
    assert torch.allclose(head.route_weights(x, (ids, weights)), want, atol=1e-6)
    with pytest.raises(ValueError, match="n-grams"):
        head(x)
    from fusion.model import create_model

    model = create_model(
        "bert-tiny-random", None, fusion="logits", text_routes=2, preprocess={"text_ngrams": 16}
    ).eval()
    batch = Preprocessor(model.preprocess_cfg, model.tokenizer).tokenize(TEXTS)
    assert {"text_ngrams", "text_ngram_weights"} <= set(batch)
    with torch.no_grad():
        model(**batch)
        blank = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      text_present=torch.zeros(len(TEXTS), dtype=torch.bool))  # fmt: skip
    assert torch.equal(blank.logits, torch.zeros_like(blank.logits))  # no text: nothing read, nothing said
