"""int8 serving against fp32: how often the top label changes, and what it does to accuracy, on every validation split.

    PYTHONPATH=. python bench/int8_agreement.py [--model fusion/assets/default] [--data-root ../shared/data]
        [--rows 0] [--batch 1] [--threads 1] [--only image|text] [--text-int8 all|qkv|no-ffn]
        [--out runs/int8_agreement.json]

Each row is served as the app serves a request (`EmotionPredictor.predict_batch`; `--batch 1`: a lone request),
once by the fp32 model and once by `quantize="int8"`: faces alone (FER+ validation, FER2013 validation, effectnet
validation) and texts alone (GoEmotions dev, every `text/*/dev.csv`, the project's held-out sentences). Per data:
top-label agreement, accuracy and mean per-class recall of each, and the largest difference in a served
probability; then all faces and all texts together. `--rows N`: N shuffled rows of each (seed 0); 0 = all.
Validation/dev splits only. Agreement does not depend on the thread count; one thread is quickest on a shared CPU.

`--text-int8` measures a choice int8 serving does not make (it keeps the text encoder fp32): the text encoder's
Linear layers in dynamic int8 (per-channel weights, activations quantized per call), all of them, the attention
projections only (`qkv`), or all but the feed-forward layers (`no-ffn`).
"""

from __future__ import annotations

import argparse
import copy
import os
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from bench.common import print_table, write_json  # noqa: E402
from fusion.hub import DEFAULT_MODEL  # noqa: E402
from fusion.predictor import EmotionPredictor  # noqa: E402
from train.data import load_sources  # noqa: E402
from train.scoring import SENTENCES  # noqa: E402

DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def splits(root: Path) -> list[tuple[str, str, str]]:
    """(name, source, modality) of every validation/dev split there is under `root`."""
    found = [
        ("FER+ validation", root / "ferplus" / "validation.parquet", "image"),
        ("FER2013 validation", root / "fer2013" / "validation.parquet", "image"),
        ("effectnet validation", root / "effectnet" / "validation.parquet", "image"),
        ("GoEmotions dev", root / "goemotions" / "dev.tsv", "text"),
        *((f"{p.parent.name} dev", p, "text") for p in sorted((root / "text").glob("*/dev.csv"))),
        ("held-out sentences", SENTENCES, "text"),
    ]
    return [(name, str(path), modality) for name, path, modality in found if path.exists()]


def served(predictor: EmotionPredictor, rows: list, batch: int, desc: str) -> torch.Tensor:
    """Served probabilities (n, labels), requests sent `batch` at a time."""
    out = []
    for start in tqdm(range(0, len(rows), batch), desc=desc, leave=False):
        for p in predictor.predict_batch(rows[start : start + batch]):
            out.append([p.probabilities[name] for name in predictor.labels])
    return torch.tensor(out)


TEXT_LAYERS: dict[str, Callable[[str], bool]] = {
    "all": lambda name: True,
    "qkv": lambda name: name.endswith(("query", "key", "value")),
    "no-ffn": lambda name: (
        "intermediate" not in name and not (name.endswith("output.dense") and "attention" not in name)
    ),
}


def with_text_int8(predictor: EmotionPredictor, layers: str) -> EmotionPredictor:
    """`predictor` with the text encoder's Linear layers chosen by `layers` in dynamic int8."""
    from torch import nn
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    model = copy.deepcopy(predictor.model)
    chosen = {f"text.{name}": per_channel_dynamic_qconfig for name, module in model.text.named_modules()
              if isinstance(module, nn.Linear) and TEXT_LAYERS[layers](name)}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        model = quantize_dynamic(model, chosen, dtype=torch.qint8)
    return EmotionPredictor(model, predictor.preprocessor.tokenizer)


def mean_recall(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean per-class recall over the classes the data has."""
    preds = probs.argmax(1)
    return float(torch.stack([(preds[labels == k] == k).float().mean() for k in labels.unique()]).mean())


def compare(name: str, fp32: torch.Tensor, int8: torch.Tensor, labels: torch.Tensor) -> dict:
    return {
        "data": name,
        "n": len(labels),
        "top-label agreement": float((fp32.argmax(1) == int8.argmax(1)).float().mean()),
        "fp32 accuracy": float((fp32.argmax(1) == labels).float().mean()),
        "int8 accuracy": float((int8.argmax(1) == labels).float().mean()),
        "fp32 mean recall": mean_recall(fp32, labels),
        "int8 mean recall": mean_recall(int8, labels),
        "largest probability difference": float((fp32 - int8).abs().max()),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--rows", type=int, default=0, help="rows of each split (0: all)")
    parser.add_argument("--batch", type=int, default=1, help="requests per model call (1: a lone request)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=["image", "text"], default=None, help="faces only, or texts only")
    parser.add_argument("--text-int8", choices=sorted(TEXT_LAYERS), default=None,
                        help="also put these text-encoder layers in dynamic int8 (not what int8 serving does)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    fp32, int8 = EmotionPredictor.load(args.model), EmotionPredictor.load(args.model, quantize="int8")
    if args.text_int8:
        int8 = with_text_int8(int8, args.text_int8)
    rows, pooled = [], {"image": [], "text": []}
    for name, source, modality in splits(args.data_root):
        if args.only not in (None, modality):
            continue
        data = load_sources([source])[0]["all"]
        if args.rows:
            data = data.shuffle(seed=0).select(range(min(args.rows, len(data))))  # files are often grouped by label
        requests = [(x, None) if modality == "image" else (None, x) for x in data[modality]]
        a, b = (served(p, requests, args.batch, f"{name} {w}") for p, w in ((fp32, "fp32"), (int8, "int8")))
        labels = torch.tensor(data["label"])
        rows.append(compare(name, a, b, labels))
        pooled[modality].append((a, b, labels))
        print_table(rows[-1:], list(rows[-1]))
    for modality, what in (("image", "all faces"), ("text", "all texts")):
        if pooled[modality]:
            rows.append(compare(what, *(torch.cat(parts) for parts in zip(*pooled[modality], strict=True))))
    text = f", text encoder's {args.text_int8} Linear layers dynamic int8" if args.text_int8 else ""
    print(f"\n{args.model}: int8{text} against fp32, requests of {args.batch}")
    print_table(rows, list(rows[0]))
    write_json(args.out, {"model": str(args.model), "batch": args.batch, "text_int8": args.text_int8, "rows": rows})
    return {"rows": rows}


if __name__ == "__main__":
    main()
