"""How often the served answer is right, by the gap between its two most likely emotions: the margin below
which the app says "not sure: A or B" (`fusion.doubt.MARGIN`).

    PYTHONPATH=. python bench/doubt.py [--data-root ../shared/data] [--rows 1000] [--out runs/doubt.json]

On validation/dev data only, through `EmotionPredictor` on the offline default: FER+ validation faces (image
only) and the text corpora's dev rows (text only), `--rows` of each, shuffled with seed 0. The margin is
the smallest gap from which, in every bin above it, the answer is right at least two times in three.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench.common import print_table, write_json
from fusion.hub import DEFAULT_MODEL
from fusion.predictor import EmotionPredictor
from train.data import load_sources

DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
EDGES = [i / 20 for i in range(11)] + [1.0]  # gap bins of 0.05 up to 0.5, then the rest
RIGHT_ENOUGH = 2 / 3


def gaps_and_hits(predictor: EmotionPredictor, images: list, texts: list, labels: list[int]) -> tuple:
    gaps, hits = [], []
    for start in range(0, len(labels), 64):
        answers = predictor.predict_batch(list(zip(images[start : start + 64], texts[start : start + 64], strict=True)))
        for answer, label in zip(answers, labels[start : start + 64], strict=True):
            ranked = sorted(answer.probabilities.values(), reverse=True)
            gaps.append(ranked[0] - ranked[1])
            hits.append(answer.label == predictor.labels[label])
    return torch.tensor(gaps), torch.tensor(hits, dtype=torch.float64)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    predictor = EmotionPredictor.load(args.model)
    faces = load_sources([str(args.data_root / "ferplus" / "validation.parquet")])[0]["all"].shuffle(seed=0)
    faces = faces.select(range(min(args.rows, len(faces))))
    corpora = [str(args.data_root / "goemotions" / "dev.tsv")]
    corpora += [str(p / "dev.csv") for p in sorted((args.data_root / "text").iterdir()) if (p / "dev.csv").is_file()]
    texts = load_sources(corpora)[0]["all"].shuffle(seed=0)
    texts = texts.select(range(min(args.rows, len(texts))))
    face_gaps, face_hits = gaps_and_hits(predictor, list(faces["image"]), [None] * len(faces), faces["label"])
    text_gaps, text_hits = gaps_and_hits(predictor, [None] * len(texts), list(texts["text"]), texts["label"])
    gaps, hits = torch.cat([face_gaps, text_gaps]), torch.cat([face_hits, text_hits])
    rows = []
    for low, high in zip(EDGES[:-1], EDGES[1:], strict=True):
        inside = (gaps >= low) & (gaps < high)
        if inside.any():
            rows.append({"gap": f"{low:.2f}-{high:.2f}", "rows": int(inside.sum()), "right": float(hits[inside].mean()),
                         "low": low})  # fmt: skip
    margin = next((r["low"] for i, r in enumerate(rows) if all(s["right"] >= RIGHT_ENOUGH for s in rows[i:])), None)
    print_table(rows, ["gap", "rows", "right"])
    print(f"margin: {margin} (below it the answer is right less than {RIGHT_ENOUGH:.0%} of the time in some bin)")
    result = {"rows": rows, "margin": margin, "faces": len(faces), "texts": len(texts)}
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
