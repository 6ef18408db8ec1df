"""A second text path grown on a trained text model (`train.branch`): it answers as the model until trained, trains
without touching the shared encoder, saves and loads back, and pools with the first path exactly; the recipe that
grows one trains its stages first and serves the pooled folder."""

import argparse
import json

import pytest
import torch

from fusion.hub import load_model_folder
from fusion.model import create_model
from fusion.predictor import EmotionPredictor
from tests.test_text_mix import _rows, _split_folder, _tiny_branch
from train.branch import choose_pool_weight, grow_text_branch, pool_heads
from train.export import save_model_folder

TEXTS = ["I am so happy today", "this is awful and I hate it, really", "what?"]


def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    model = create_model("bert-tiny-random", None, fusion="logits").eval()
    model.set_temperature(1.3)
    return model


def _logits(model) -> torch.Tensor:
    batch = model.tokenizer(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).text_logits


def test_a_grown_branch_answers_as_the_model_and_trains_only_itself():
    model = _tiny()
    grown = grow_text_branch(model, 1)
    assert torch.equal(_logits(grown.eval()), _logits(model)) and grown.text.dim == 2 * model.text.dim
    trainable = {n for n, p in grown.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("text.branch.", "text_embed.branch_norm.", "text_embed.placeholder",
                                           "text_head.")) for n in trainable)  # fmt: skip
    before = {k: v.clone() for k, v in grown.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in grown.parameters() if p.requires_grad], lr=0.5)
    batch = grown.tokenizer(TEXTS, return_tensors="pt", padding=True)
    grown.train()
    for _ in range(2):  # the head reads the branch from zero: its gradient reaches the branch from the second step
        optimizer.zero_grad()
        grown(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).text_logits[:, 3].sum().backward()
        optimizer.step()
    after = grown.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert any(k.startswith("text.branch.") for k in changed)
    assert not any(k.startswith(("text.model.", "text_embed.norm.")) for k in changed)
    with pytest.raises(ValueError, match="has none yet"):
        grow_text_branch(grown, 1)


def test_a_branched_model_answers_each_thread_its_own_texts():
    """The branch reads what the shared layers give it for this call, also when threads share the model."""
    from concurrent.futures import ThreadPoolExecutor

    grown = grow_text_branch(_tiny(), 1)
    with torch.no_grad():
        grown.text.branch[0].output.dense.weight.add_(0.3)
        grown.text_head.weight.normal_()
    grown.eval()
    texts = [f"text number {i} " + "word " * (i % 7) for i in range(40)]

    def answer(text):
        batch = grown.tokenizer([text], return_tensors="pt")
        with torch.no_grad():
            return grown(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).text_logits[0]

    alone = [answer(t) for t in texts]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(answer, texts))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(alone, together, strict=True))


def test_a_branched_model_saves_and_loads_back(tmp_path):
    grown = grow_text_branch(_tiny(), 1)
    with torch.no_grad():
        grown.text.branch[0].output.dense.weight.add_(0.1)
        grown.text_head.weight.normal_()
    save_model_folder(grown, grown.tokenizer, tmp_path / "m")
    loaded, _ = load_model_folder(tmp_path / "m")
    assert loaded.config["text_encoder"]["branch_at"] == 1
    assert torch.allclose(_logits(loaded), _logits(grown.eval()), atol=1e-6)


@pytest.mark.parametrize("weight", [0.0, 0.35, 1.0])
def test_pooled_heads_serve_the_weighted_product_of_both_calibrated_answers(weight, tmp_path):
    first = _tiny()
    branched = grow_text_branch(first, 1)
    with torch.no_grad():
        branched.text.branch[-1].output.dense.weight.add_(0.2)
        branched.text_head.weight.normal_()
        branched.text_head.bias.normal_()
    branched.set_temperature(0.7)
    save_model_folder(pool_heads(first, branched, weight), first.tokenizer, tmp_path / "pooled")
    want = torch.log_softmax((1 - weight) * _logits(first) / 1.3 + weight * _logits(branched.eval()) / 0.7, dim=-1)
    served = EmotionPredictor.load(tmp_path / "pooled").predict_batch([(None, t) for t in TEXTS])
    got = torch.tensor([[p.probabilities[name] for name in first.labels] for p in served]).log()
    assert torch.allclose(got, want, atol=1e-4)


def test_pooling_refuses_a_model_not_grown_from_the_first():
    branched = grow_text_branch(_tiny(seed=0), 1)
    with pytest.raises(ValueError, match="not grown from this one"):
        pool_heads(_tiny(seed=1), branched, 0.5)
    with pytest.raises(ValueError, match="no text branch"):
        pool_heads(_tiny(), _tiny(), 0.5)


def test_the_pool_weight_serves_the_target_best_while_the_others_stay_within_their_noise():
    """Over the grid the target rises with w; 'talk' (2,500 rows: one standard error 0.0098 at 0.6) holds until
    w = 0.5 and then drops 0.05 or more, so w = 0.5 is chosen though the target would score higher further on;
    'tiny' (10 rows: 0.155) swings by 0.1 at every other step, within its noise, and does not stop it."""

    def score(logits):
        w = float(logits[0, 0])
        swing = 0.1 * (round(w * 10) % 2)
        return {"reddit": 0.5 + 0.2 * w, "talk": 0.6 - (0.0 if w <= 0.5 else 0.1 * w), "tiny": 0.6 - swing}

    rows = {"reddit": 5000, "talk": 2500, "tiny": 10}
    weight, table = choose_pool_weight(torch.zeros(1, 7), torch.ones(1, 7), score, "reddit", rows, grid=11)
    assert weight == pytest.approx(0.5) and len(table) == 11 and table[0]["weight"] == 0.0
    rows["tiny"] = 100_000  # the same swing on a large corpus is a real loss: only the even steps keep it
    weight, _ = choose_pool_weight(torch.zeros(1, 7), torch.ones(1, 7), score, "reddit", rows, grid=11)
    assert weight == pytest.approx(0.4)


def test_a_recipe_that_grows_a_branch_trains_its_stages_and_serves_the_pool(
    tmp_path, monkeypatch, fresh_accelerate_state
):
    """The start stage is trained first, the branch grows on it and trains on its own corpus, and the folder the
    recipe serves pools both with the weight chosen on the start stage's dev rows; its record lists every run."""
    from train import default_assets
    from train.default_assets import Branch

    data = tmp_path / "data"
    _split_folder(data / "reddit", _rows({"happy": 12, "sad": 12}), _rows({"happy": 3, "sad": 3}))
    _split_folder(data / "talk", _rows({"angry": 12, "happy": 12}), _rows({"angry": 3, "happy": 3}))
    mix = _tiny_branch(("reddit", "talk#labels=angry,happy"))
    grown = _tiny_branch(("reddit",))
    grown = Branch(modality="text", local=grown.local, online=(), recipe=(*grown.recipe, "--text-branch-at", "1"),
                   start="tiny-mix", pool_target="reddit")  # fmt: skip
    monkeypatch.setattr(default_assets, "BRANCHES", {"tiny-mix": mix, "tiny": grown})
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(data_root=data, online=False, resume=True, epochs=None, run_dir=tmp_path / "branch")
    default_assets.train_branch("tiny", args)
    served = default_assets.pooled_folder("tiny", args)
    assert served == tmp_path / "branch" / "pooled"
    pool = json.loads((served / "pool.json").read_text())
    assert 0.0 <= pool["weight"] <= 1.0 and {"reddit", "talk"} <= set(pool["dev_macro_f1"][0])
    assert pool["dev_rows"] == {"reddit": 6, "talk": 6}
    runs = default_assets.branch_runs(served, "text")
    assert [r["data"] for r in runs] == [[f"{data}/reddit", f"{data}/talk#labels=angry,happy"], [f"{data}/reddit"]]
    assert runs[-1]["text_branch_at"] == 1 and runs[-1]["pool"]["weight"] == pool["weight"]
    first, _ = load_model_folder(tmp_path / "runs" / "default-tiny-mix")
    branched, _ = load_model_folder(tmp_path / "branch")
    w = pool["weight"]
    want = torch.softmax(
        (1 - w) * _logits(first) / first.temperature + w * _logits(branched) / branched.temperature, -1
    )
    got = [p.probabilities for p in EmotionPredictor.load(served).predict_batch([(None, t) for t in TEXTS])]
    assert torch.allclose(torch.tensor([[p[n] for n in first.labels] for p in got]), want, atol=1e-4)
