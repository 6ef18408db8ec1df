"""Score the offline default through `EmotionPredictor` on real validation/dev data (never a test split).

Faces, image only: FER+ validation (its crowd majority labels), FER2013 validation (its original labels; also fed
straight to the encoder, no face step, to show the predictor loses nothing on tight crops) and effectnet validation
(class-balanced in-the-wild faces). Text: GoEmotions dev (single-label comments), the dev splits of the other text corpora (each scored
over its own labels), and the project's own held-out sentences. Pairs: each FER2013 validation face with a GoEmotions dev comment of the
same label (no real paired data exists, so this only shows what fusing two independent views does).
The scores become the folder's metrics.json and model card.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from fusion.predictor import EmotionPredictor
from train.data import DataError, load_sources
from train.metrics import classification_metrics, expected_calibration_error
from train.report import print_table, write_json, write_model_card

SENTENCES = Path(__file__).resolve().parent / "sentences" / "heldout.csv"
BATCH = 64
NOTES = (
    "Every number comes from validation/dev splits (test splits were never used), scored through "
    '`EmotionPredictor` as the app serves them. {raw} "Paired by label" pairs each FER2013 validation face '
    "with a GoEmotions dev comment of the same label: no real paired data exists, so it only shows what "
    "fusing two independent views does."
)


@dataclass(frozen=True)
class Part:
    """One evaluation of the default: which data, which split, which input, and how to get its rows."""

    data: str
    split: str
    input: str
    rows: Callable[[Path], tuple[list, list, torch.Tensor]]  # data root -> (images, texts, labels)
    hub_id: str | None = None
    labels: tuple[str, ...] | None = None  # the data's own labels (macro-F1 over these); None: all


# The text corpora's own labels (../shared/data/text/README.md): a corpus without "neutral" is scored without it.
CORPUS_LABELS = {
    "crowdflower": ("angry", "fear", "happy", "neutral", "sad", "surprise"),
    "dair_emotion": ("angry", "fear", "happy", "sad", "surprise"),
    "xed": ("angry", "disgust", "fear", "happy", "sad", "surprise"),
    "meld": ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
    "dailydialog": ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
    "emorynlp": ("angry", "fear", "happy", "neutral", "sad"),
    "enisear": ("angry", "disgust", "fear", "happy", "sad"),
    "emotion_stimulus": ("angry", "disgust", "fear", "happy", "sad", "surprise"),
}
CORPUS_NAMES = {
    "crowdflower": "CrowdFlower tweets dev",
    "dair_emotion": 'dair-ai emotion (tweets, "i feel ...") dev',
    "xed": "XED film subtitles dev",
    "meld": "MELD TV dialogue dev",
    "dailydialog": "DailyDialog everyday dialogue dev",
    "emorynlp": "EmoryNLP TV dialogue dev",
    "enisear": 'enISEAR lived situations ("I felt ... when") dev',
    "emotion_stimulus": "Emotion-Stimulus causes dev",
}


def _faces(root: Path) -> tuple[list, list, torch.Tensor]:
    fer = load_sources([str(root / "fer2013" / "validation.parquet")])[0]["all"]
    return list(fer["image"]), [None] * len(fer), torch.tensor(fer["label"])


def _ferplus(root: Path) -> tuple[list, list, torch.Tensor]:
    faces = load_sources([str(root / "ferplus" / "validation.parquet")])[0]["all"]
    return list(faces["image"]), [None] * len(faces), torch.tensor(faces["label"])


def _effectnet(root: Path) -> tuple[list, list, torch.Tensor]:
    faces = load_sources([str(root / "effectnet" / "validation.parquet")])[0]["all"]
    return list(faces["image"]), [None] * len(faces), torch.tensor(faces["label"])


def _comments(root: Path) -> tuple[list, list, torch.Tensor]:
    dev = load_sources([str(root / "goemotions" / "dev.tsv")])[0]["all"]
    return [None] * len(dev), list(dev["text"]), torch.tensor(dev["label"])


def _sentences(root: Path) -> tuple[list, list, torch.Tensor]:
    rows = load_sources([str(SENTENCES)])[0]["all"]
    return [None] * len(rows), list(rows["text"]), torch.tensor(rows["label"])


def _corpus(name: str) -> Callable[[Path], tuple[list, list, torch.Tensor]]:
    def rows(root: Path) -> tuple[list, list, torch.Tensor]:
        dev = load_sources([str(root / "text" / name / "dev.csv")])[0]["all"]
        return [None] * len(dev), list(dev["text"]), torch.tensor(dev["label"])

    return rows


def _pairs(root: Path) -> tuple[list, list, torch.Tensor]:
    faces, _, face_labels = _faces(root)
    _, texts, text_labels = _comments(root)
    return pair_by_label(faces, face_labels, texts, text_labels)


PARTS: dict[str, Part] = {
    "ferplus": Part("FER+ validation (crowd majority)", "validation", "image only", _ferplus, "microsoft/FERPlus"),
    "face": Part("FER2013 validation (PublicTest)", "validation", "image only", _faces, "fer2013"),
    "effectnet": Part("effectnet validation (balanced in-the-wild faces)", "validation", "image only", _effectnet),
    "text": Part("GoEmotions dev, single-label", "validation", "text only", _comments, "google-research-datasets/go_emotions"),
    **{
        name: Part(CORPUS_NAMES[name], "validation", "text only", _corpus(name), labels=labels)
        for name, labels in CORPUS_LABELS.items()
    },
    "sentences": Part("the project's held-out sentences", "held-out", "text only", _sentences),
    "paired_by_label": Part("FER2013 faces + GoEmotions comments, paired by label", "validation", "image+text", _pairs),
}  # fmt: skip


TEXT_PARTS = ("text", *CORPUS_LABELS, "sentences")  # what a text branch is scored on


def scored(log_probs: torch.Tensor, labels: torch.Tensor, names: list[str], own: tuple[str, ...] | None = None) -> dict:
    """Accuracy, macro-F1 (over the data's `own` labels), per-class scores, confusion and calibration (ECE) of
    served probabilities."""
    own_labels = list(own) if own else None
    return {
        **classification_metrics(log_probs, labels, names, own_labels),
        "ece": expected_calibration_error(log_probs, labels),
        "labels": own_labels or names,
    }


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


def score_default(folder: Path, data_root: Path, parts: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every evaluation (or only `parts`) of the model in `folder`; writes its metrics.json and card unless `parts`
    picks a subset (a check, not the record)."""
    predictor = EmotionPredictor.load(folder)
    names = predictor.labels
    evaluations = []
    for key, part in PARTS.items():
        if parts is not None and key not in parts:
            continue
        try:
            images, texts, labels = part.rows(data_root)
        except DataError as err:  # a corpus that is not there (an older ../shared)
            print(f"Not scored: {part.data} ({err})")
            continue
        result = scored(predict_rows(predictor, images, texts, part.data), labels, names, part.labels)
        evaluations.append({"key": key, "data": part.data, "split": part.split, "input": part.input,
                            "hub_id": part.hub_id, **result})  # fmt: skip
    metrics: dict[str, Any] = {"evaluations": evaluations}
    if parts is None or "face_raw_encoder" in parts:
        images, _, labels = _faces(data_root)
        metrics["face_raw_encoder"] = scored(raw_encoder(predictor, images), labels, names)
    print_summary(evaluations)
    if parts is None:
        write_json(folder / "metrics.json", metrics)
        write_card(folder, metrics, predictor.model)
    return metrics


def write_card(folder: Path, metrics: dict[str, Any], model) -> None:
    """The default's model card from its metrics.json and training record."""
    runs = (
        json.loads((folder / "training_runs.json").read_text())["runs"]
        if (folder / "training_runs.json").is_file()
        else []
    )
    raw = metrics["face_raw_encoder"]["accuracy"]
    notes = NOTES.format(raw=f"Fed straight to the encoder (no face step) the FER2013 faces score {100 * raw:.1f}%.")
    write_model_card(folder, metrics, runs, model, repo_id="emotion-fusion offline default", notes=notes)


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


def print_summary(evaluations: list[dict[str, Any]]) -> None:
    rows = [{"what": r["data"], "input": r["input"], "n": r["n"], "accuracy": r["accuracy"],
             "mean recall": r["mean_recall"], "macro-F1": r["macro_f1"], "weighted-F1": r["weighted_f1"],
             "ECE": r["ece"]} for r in evaluations]  # fmt: skip
    print_table(rows, ["what", "input", "n", "accuracy", "mean recall", "macro-F1", "weighted-F1", "ECE"])
