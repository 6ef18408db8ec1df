"""Face branches across face sets, through `EmotionPredictor` (image only, as served): each set's validation
split as given, and its faces placed in webcam-size pictures where the served detector must find them.

    PYTHONPATH=. python bench/face_domains.py [--model DIR ...] [--data-root ../shared/data] [--limit 1000]
        [--out runs/face_domains.json]

Sets (validation splits only): effectnet (balanced in-the-wild faces cut out on black), FER+ (crowd majority)
and FER2013 (its own labels). "in pictures": each face (100 to 220 px) in a 640x480 picture on a plain, gradient,
noise or photo background; effectnet's faces are pasted without their black surround, so the picture shows
around them as a camera would. A face the detector misses counts as wrong. Columns: accuracy, mean per-class
recall (what a balanced set's accuracy would be), the share of faces called neutral, and each class's recall.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from bench.common import print_table, write_json
from bench.pictures import face_in_picture
from fusion.encoders import DEFAULT_MODEL
from fusion.labels import EMOTIONS
from fusion.predictor import EmotionPredictor, NoFaceError
from train.data import load_sources

DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SETS = {"effectnet": "effectnet/validation.parquet", "ferplus": "ferplus/validation.parquet",
        "fer2013": "fer2013/validation.parquet"}  # fmt: skip
IN_PICTURES = ("effectnet", "ferplus")
BATCH = 32


def load_set(root: Path, name: str, limit: int) -> tuple[list, torch.Tensor]:
    """Up to `limit` faces of a set's validation split (a seeded sample) and their labels."""
    rows = load_sources([str(root / SETS[name])])[0]["all"]
    if limit and len(rows) > limit:
        rows = rows.shuffle(seed=0).select(range(limit))
    return list(rows["image"]), torch.tensor(rows["label"])


def predicted(predictor: EmotionPredictor, images: list) -> torch.Tensor:
    """The served label id per image; -1 where no face was found."""
    out = []
    for start in range(0, len(images), BATCH):
        for result in predictor.predict_batch([(i, None) for i in images[start : start + BATCH]], return_errors=True):
            if isinstance(result, NoFaceError):
                out.append(-1)
            elif isinstance(result, Exception):
                raise result
            else:
                out.append(predictor.labels.index(result.label))
    return torch.tensor(out)


def summary(preds: torch.Tensor, labels: torch.Tensor, names: list[str]) -> dict:
    recall = {n: float((preds[labels == i] == i).float().mean()) for i, n in enumerate(names) if (labels == i).any()}
    return {
        "n": len(labels),
        "found": float((preds >= 0).float().mean()),
        "accuracy": float((preds == labels).float().mean()),
        "mean recall": float(np.mean(list(recall.values()))),
        "said neutral": float((preds == names.index("neutral")).float().mean()),
        "recall": recall,
    }


def score(folder: Path, root: Path, limit: int, sets: tuple[str, ...] = tuple(SETS)) -> list[dict]:
    """One row per set and per "in pictures" variant for the model in `folder`."""
    predictor = EmotionPredictor.load(folder)
    names = predictor.labels
    rows = []
    for name in sets:
        images, labels = load_set(root, name, limit)
        labels = torch.tensor([names.index(EMOTIONS[i]) for i in labels.tolist()])
        rows.append({"model": folder.name, "faces": f"{name} validation", **summary(predicted(predictor, images),
                                                                                      labels, names)})  # fmt: skip
        if name in IN_PICTURES:
            rng = np.random.default_rng(0)
            pictures = [face_in_picture(i, rng) for i in images]
            rows.append({"model": folder.name, "faces": f"{name} in pictures",
                         **summary(predicted(predictor, pictures), labels, names)})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, nargs="+", default=[DEFAULT_MODEL], help="model folders to compare")
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--limit", type=int, default=0, help="faces per set (a seeded sample; 0: all)")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = [row for folder in args.model for row in score(folder, args.data_root, args.limit, tuple(args.sets))]
    table = [{**{k: v for k, v in r.items() if k != "recall"},
              "recall " + "/".join(n[:3] for n in EMOTIONS): " ".join(f"{r['recall'].get(n, float('nan')):.2f}"
                                                                    for n in EMOTIONS)} for r in rows]  # fmt: skip
    print_table(table, list(table[0]))
    write_json(args.out, {"rows": rows})
    return rows


if __name__ == "__main__":
    main()
