"""Score the offline default through `EmotionPredictor` on real validation/dev data (never a test split).

Faces: FER2013 validation (image only), also fed straight to the encoder (no face step) to show the
predictor loses nothing on tight crops, and with fer's mini-Xception as the image branch. Text:
GoEmotions dev, single-label comments (text only), and the project's own held-out sentences. Pairs:
each FER2013 validation face with a GoEmotions dev comment of the same label (no real paired data
exists, so this only shows what fusing two independent views does).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from fusion.default_model import HEADS, build_default_model, head_settings
from fusion.predictor import EmotionPredictor
from train.data import load_sources
from train.metrics import classification_metrics, expected_calibration_error
from train.report import write_json

SENTENCES = Path(__file__).resolve().parent / "sentences" / "heldout.csv"
BATCH = 64


def scored(log_probs: torch.Tensor, labels: torch.Tensor, names: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class scores, confusion and calibration (ECE) of served probabilities."""
    return {**classification_metrics(log_probs, labels, names), "ece": expected_calibration_error(log_probs, labels)}


def predict_rows(predictor: EmotionPredictor, images: list, texts: list, desc: str) -> torch.Tensor:
    """log-probabilities the predictor serves for (image, text) rows, in batches."""
    out = []
    for start in tqdm(range(0, len(images), BATCH), desc=desc, leave=False):
        batch = list(zip(images[start : start + BATCH], texts[start : start + BATCH], strict=True))
        for p in predictor.predict_batch(batch):
            out.append(torch.tensor([p.probabilities[name] for name in predictor.labels]).clamp(min=1e-12).log())
    return torch.stack(out)


@torch.inference_mode()
def raw_encoder(predictor: EmotionPredictor, images: list) -> torch.Tensor:
    """The image branch on the whole image, no face step (the encoder's own input transform only)."""
    out = []
    for start in range(0, len(images), BATCH):
        x = torch.stack([predictor.preprocessor.transform(i) for i in images[start : start + BATCH]])
        logits = predictor.model(pixel_values=x).image_logits / float(predictor.model.temperature)
        out.append(torch.log_softmax(logits.float(), dim=-1))
    return torch.cat(out)


def score_default(data_root: Path, out: Path, parts: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every score (or only `parts`), written to `out` with the heads' settings and the data used."""
    fer = load_sources([str(data_root / "fer2013" / "validation.parquet")])[0]["all"]
    dev, report = load_sources([str(data_root / "goemotions" / "dev.tsv")])
    dev = dev["all"]
    sentences = load_sources([str(SENTENCES)])[0]["all"]
    faces, face_labels = list(fer["image"]), torch.tensor(fer["label"])
    texts, text_labels = list(dev["text"]), torch.tensor(dev["label"])
    with tempfile.TemporaryDirectory() as tmp:
        predictor = EmotionPredictor.load(build_default_model(Path(tmp) / "default"))
        mini = Path(tmp) / "mini"
        names = predictor.labels
        rows = {  # what each score runs, built only when asked for
            "face": lambda: scored(
                predict_rows(predictor, faces, [None] * len(faces), "FER2013 validation"), face_labels, names
            ),
            "face_raw_encoder": lambda: scored(raw_encoder(predictor, faces), face_labels, names),
            "face_mini_xception": lambda: scored(
                predict_rows(
                    EmotionPredictor.load(build_default_model(mini, "mini_xception")),
                    faces,
                    [None] * len(faces),
                    "mini-Xception",
                ),
                face_labels,
                names,
            ),
            "text": lambda: scored(
                predict_rows(predictor, [None] * len(texts), texts, "GoEmotions dev"), text_labels, names
            ),
            "sentences": lambda: scored(
                predict_rows(predictor, [None] * len(sentences), list(sentences["text"]), "own sentences"),
                torch.tensor(sentences["label"]),
                names,
            ),
            "paired_by_label": lambda: score_pairs(predictor, faces, face_labels, texts, text_labels),
        }
        metrics = {name: score() for name, score in rows.items() if parts is None or name in parts}
    metrics["settings"] = {key: head_settings(path) for key, path in HEADS.items()}
    metrics["data"] = {
        "face": "FER2013 validation (the Kaggle release's PublicTest), 48 px gray face crops",
        "text": "GoEmotions dev, Ekman grouping, single-label comments only",
        "text_left_out": report.notes,
        "sentences": "the project's own held-out sentences (train/sentences/heldout.csv)",
        "paired_by_label": "each FER2013 validation face with a GoEmotions dev comment of the same label (seed 0)",
    }
    write_json(out, metrics)
    print_summary(metrics)
    return metrics


def score_pairs(predictor: EmotionPredictor, faces, face_labels, texts, text_labels) -> dict[str, Any]:
    paired_faces, paired_texts, labels = pair_by_label(faces, face_labels, texts, text_labels)
    return scored(predict_rows(predictor, paired_faces, paired_texts, "pairs"), labels, predictor.labels)


def pair_by_label(faces, face_labels, texts, text_labels) -> tuple[list, list, torch.Tensor]:
    """Each face with a random text of its label (seeded); faces of a label with no text are skipped."""
    generator = torch.Generator().manual_seed(0)
    by_label = {int(k): (text_labels == k).nonzero().flatten() for k in text_labels.unique()}
    pairs = []
    for i, label in enumerate(face_labels.tolist()):
        pool = by_label.get(label)
        if pool is not None and len(pool):
            pairs.append((faces[i], texts[int(pool[torch.randint(len(pool), (1,), generator=generator)])], label))
    return [p[0] for p in pairs], [p[1] for p in pairs], torch.tensor([p[2] for p in pairs])


def print_summary(metrics: dict[str, Any]) -> None:
    from train.report import print_table

    rows = [
        {"what": key, "n": m["n"], "accuracy": m["accuracy"], "macro-F1": m["macro_f1"], "ECE": m["ece"]}
        for key, m in metrics.items()
        if isinstance(m, dict) and "accuracy" in m
    ]
    print_table(rows, ["what", "n", "accuracy", "macro-F1", "ECE"])
