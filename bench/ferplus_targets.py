"""FER+ crowd votes or their majority as the target: the same face features, two linear heads, one comparison.

    PYTHONPATH=. python bench/ferplus_targets.py [--data-root ../shared/data] [--model fusion/assets/default]
        [--epochs 30] [--out runs/ferplus_targets.json]

A cheap, controlled comparison (the full fine-tuning run costs an hour a try on 2 cores): the face tower of
`--model`, frozen, encodes FER+ train and validation once (eval preprocessing of the registered face input);
a linear head is then trained on the vote distributions (after FER+'s outlier rule) and another on the
majority labels, with the same optimiser, epochs and seed. Scored on FER+ validation (majority labels):
accuracy, macro-F1, and the NLL against the votes (how well each head knows when taggers disagree).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench.common import print_table, write_json
from fusion.encoders import image_preprocess
from fusion.hub import DEFAULT_MODEL, load_model_folder
from fusion.preprocess import Preprocessor
from train.data import load_sources
from train.metrics import classification_metrics, expected_calibration_error

DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@torch.no_grad()  # not inference_mode: the heads are trained on these features
def features(model, rows, batch: int = 256) -> torch.Tensor:
    prep = Preprocessor(image_preprocess(model.image.arch), tokenizer=None)
    out = []
    for start in range(0, len(rows), batch):
        x = torch.stack([prep.image_tensor(prep.face(image)) for image in rows[start : start + batch]["image"]])
        out.append(model.image_embed(model.image(x, tta="none"), torch.ones(len(x), dtype=torch.bool)))
    return torch.cat(out)


def fit_head(x: torch.Tensor, targets: torch.Tensor, epochs: int, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], targets.shape[1])
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(epochs):
        for rows in torch.randperm(len(x)).split(256):
            loss = torch.nn.functional.cross_entropy(head(x[rows]), targets[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return head


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    model, _ = load_model_folder(args.model)
    splits = load_sources([str(args.data_root / "ferplus")])[0]
    train, val = splits["train"], splits["validation"]
    x_train, x_val = features(model, train), features(model, val)
    votes = torch.tensor(train["target"])
    majority = torch.nn.functional.one_hot(torch.tensor(train["label"]), votes.shape[1]).float()
    val_votes, val_labels = torch.tensor(val["target"]), torch.tensor(val["label"])
    rows = []
    for name, targets in (("vote distributions", votes), ("majority labels", majority)):
        head = fit_head(x_train, targets, args.epochs)
        with torch.no_grad():
            logits = head(x_val)
        scores = classification_metrics(logits, val_labels, model.labels)
        rows.append({
            "trained on": name,
            "val accuracy": scores["accuracy"],
            "val macro-F1": scores["macro_f1"],
            "NLL vs votes": float(torch.nn.functional.cross_entropy(logits, val_votes)),
            "ECE": expected_calibration_error(logits, val_labels),
        })  # fmt: skip
    print(f"FER+ train {len(train)} / validation {len(val)} faces; frozen tower of {args.model}")
    print_table(rows, list(rows[0]))
    result = {"rows": rows, "model": str(args.model), "epochs": args.epochs}
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
