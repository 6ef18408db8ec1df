"""What the face detector does to the answers: the model served with YuNet (the default) and with OpenCV's Haar
cascade (the fallback where the `yuface` wheel is missing), on FER+ validation faces.

    PYTHONPATH=. python bench/detector_accuracy.py [--model fusion/assets/default] [--data-root ../shared/data]
        [--pictures 300] [--out runs/detector_accuracy.json]

The model folder is served (`EmotionPredictor`) with its detector set to each, on:
* FER+ validation faces as they are: 48 px crops, taken as face crops without a detection (both rows alike);
* the same faces composed into webcam-sized pictures as `bench/face_detectors.py` composes them (640x480 or
  1280x720, 1 to 4 faces of 60 to 220 px on plain, gradient, noisy and photo backgrounds). Every face found is
  scored (`details["faces"]`) and matched to the pasted face whose box holds its centre; a face no detection
  found counts as wrong (the app answers "no face found" there).
Per detector: faces found, accuracy over every face and over the faces found, and mean per-class recall over
every face (FER+ crowd-majority labels; validation only, never a test split).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from bench.common import print_table, write_json  # noqa: E402
from bench.face_detectors import DATA_ROOT, composed_pictures  # noqa: E402
from fusion.faces import DETECTORS, yunet_available  # noqa: E402
from fusion.hub import DEFAULT_MODEL, load_model_folder  # noqa: E402
from fusion.predictor import EmotionPredictor  # noqa: E402
from train.data import load_sources  # noqa: E402

NOT_FOUND = -1


def served_with(folder: Path, detector: str) -> EmotionPredictor:
    model, tokenizer = load_model_folder(folder)
    model.preprocess_cfg = dataclasses.replace(model.preprocess_cfg, detector=detector)
    return EmotionPredictor(model, tokenizer, source=str(folder))


def crops(predictor: EmotionPredictor, faces: list, batch: int = 32) -> list[int]:
    """The label index served for each face crop."""
    out = []
    for start in range(0, len(faces), batch):
        answers = predictor.predict_batch([(face, None) for face in faces[start : start + batch]])
        out += [predictor.labels.index(a.label) for a in answers]
    return out


def pictures(predictor: EmotionPredictor, composed: list[tuple]) -> list[int]:
    """For every pasted face, in order: the label index its detection was served, or NOT_FOUND."""
    out = []
    for picture, boxes in tqdm(composed, desc=predictor.preprocessor.detector, leave=False):
        answer = predictor.predict_batch([(picture, None)], return_errors=True)[0]
        found = answer.faces if not isinstance(answer, Exception) else []
        for x0, y0, x1, y1 in boxes:
            inside = [
                f for f in found if x0 <= (f.box[0] + f.box[2]) / 2 <= x1 and y0 <= (f.box[1] + f.box[3]) / 2 <= y1
            ]
            best = inside[0].probabilities if inside else None  # the largest detection on this face
            out.append(predictor.labels.index(max(best, key=best.get)) if best else NOT_FOUND)
    return out


def scores(detector: str, data: str, served: list[int], labels: torch.Tensor) -> dict:
    preds = torch.tensor(served)
    found = preds != NOT_FOUND
    right = preds == labels
    recall = torch.stack([right[labels == k].float().mean() for k in labels.unique()]).mean()
    return {
        "detector": detector,
        "data": data,
        "faces": len(labels),
        "found": float(found.float().mean()),
        "accuracy (every face)": float(right.float().mean()),
        "accuracy (faces found)": float(right[found].float().mean()) if found.any() else 0.0,
        "mean recall (every face)": float(recall),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--pictures", type=int, default=300, help="composed pictures (1 to 4 faces each)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    ferplus = load_sources([str(args.data_root / "ferplus" / "validation.parquet")])[0]["all"].shuffle(seed=0)
    faces, labels = list(ferplus["image"]), torch.tensor(ferplus["label"])
    composed = composed_pictures(faces, args.pictures)
    pasted = sum(len(boxes) for _, boxes in composed)
    pasted_labels = labels[torch.arange(pasted) % len(faces)]  # composed_pictures pastes the faces in order
    rows = []
    for detector in DETECTORS:
        if detector == "yunet" and not yunet_available():
            print("yuface is not installed: YuNet skipped.")
            continue
        predictor = served_with(args.model, detector)
        rows.append(scores(detector, f"FER+ validation crops ({len(faces)})", crops(predictor, faces), labels))
        rows.append(
            scores(detector, f"composed pictures ({args.pictures})", pictures(predictor, composed), pasted_labels)
        )
    print_table(rows, list(rows[0]))
    write_json(args.out, {"model": str(args.model), "rows": rows})
    return {"rows": rows}


if __name__ == "__main__":
    main()
