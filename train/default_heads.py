"""Fit the offline default's text head on the project's own sentences and save it as a small asset.

    python -m train.default_heads [--sentences train/sentences/train.csv] [--out fusion/assets/default_heads.safetensors]

The packaged MiniLM encoder stays frozen; a linear head on its (LayerNorm-ed, mean-pooled)
sentence embedding is fitted with weight decay on 90% of the training sentences and its
temperature on the other 10%. The held-out sentences are never read here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import save_file

from fusion.default_model import HEADS_ASSET, default_architecture
from fusion.encoders import packaged_minilm_path
from fusion.labels import NUM_LABELS
from fusion.preprocess import Preprocessor, load_tokenizer
from train.data import load_sources
from train.metrics import classification_metrics, fit_temperature

SENTENCES = Path(__file__).resolve().parent / "sentences" / "train.csv"


@torch.no_grad()  # not inference_mode: the embeddings are fitted on afterwards
def embed(texts: list[str], batch_size: int = 64) -> torch.Tensor:
    model = default_architecture().eval()
    prep = Preprocessor(model.preprocess_cfg, load_tokenizer(packaged_minilm_path()))
    parts = []
    for start in range(0, len(texts), batch_size):
        batch = prep.tokenize(texts[start : start + batch_size])
        parts.append(model.text_embed.norm(model.encode_text(batch["input_ids"], batch["attention_mask"])))
    return torch.cat(parts)


def fit_linear(x: torch.Tensor, y: torch.Tensor, weight_decay: float = 1e-3, steps: int = 300) -> torch.nn.Linear:
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], NUM_LABELS)
    optimizer = torch.optim.LBFGS(head.parameters(), lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(x), y) + weight_decay * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=Path, default=SENTENCES)
    parser.add_argument("--out", type=Path, default=HEADS_ASSET)
    parser.add_argument("--weight-decay", type=float, default=1e-3)
    args = parser.parse_args(argv)
    ds = load_sources([str(args.sentences)])[0]["all"]
    split = ds.train_test_split(test_size=0.1, seed=0, stratify_by_column="label")
    x_fit, x_cal = embed(split["train"]["text"]), embed(split["test"]["text"])
    y_fit, y_cal = torch.tensor(split["train"]["label"]), torch.tensor(split["test"]["label"])
    head = fit_linear(x_fit, y_fit, args.weight_decay)
    with torch.no_grad():
        logits = head(x_cal)
    temperature = fit_temperature(logits, y_cal)
    names = ds.features["label"].names
    fit_acc = classification_metrics(head(x_fit).detach(), y_fit, names)["accuracy"]
    cal = classification_metrics(logits, y_cal, names)
    save_file(
        {
            "text_head.weight": head.weight.detach().contiguous(),
            "text_head.bias": head.bias.detach().contiguous(),
            "text_temperature": torch.tensor([temperature]),
        },
        str(args.out),
        metadata={"sentences": args.sentences.name, "rows": str(len(ds)), "weight_decay": str(args.weight_decay)},
    )
    print(
        f"fit accuracy {fit_acc:.3f}; calibration split accuracy {cal['accuracy']:.3f}, temperature {temperature:.3f}"
    )
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
