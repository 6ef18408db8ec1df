"""A second text path grown on a trained text model (`train.branch`): it answers as the model until trained, trains
without touching the shared encoder, answers each thread its own texts, saves and loads back, and is routed only
with the model it grew from (the routed recipe: tests/test_text_routes.py)."""

import pytest
import torch

from fusion.hub import load_model_folder
from fusion.model import create_model
from fusion.preprocess import Preprocessor
from train.branch import grow_text_branch
from train.export import save_model_folder
from train.route import routes_of

TEXTS = ["I am so happy today", "this is awful and I hate it, really", "what?"]


def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    model = create_model("bert-tiny-random", None, fusion="logits").eval()
    model.set_temperature(1.3)
    return model


def _logits(model) -> torch.Tensor:
    batch = Preprocessor(model.preprocess_cfg, model.tokenizer).tokenize(TEXTS)  # with n-grams where it reads them
    with torch.no_grad():
        return model(**batch).text_logits


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


def test_routing_refuses_a_model_not_grown_from_the_first():
    branched = grow_text_branch(_tiny(seed=0), 1)
    calibration = {"logit_adjustment": {"tau": 0.5, "prior": {name: 1 / 7 for name in branched.labels}}}
    with pytest.raises(ValueError, match="not grown from this one"):
        routes_of(_tiny(seed=1), branched, calibration)
    with pytest.raises(ValueError, match="no text branch"):
        routes_of(_tiny(), _tiny(), calibration)
