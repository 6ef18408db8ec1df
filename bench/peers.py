"""Ours vs a peer, side by side: `fer` (Keras mini-Xception + OpenCV Haar, MIT) on the same images.

    python -m venv .venv-peers && .venv-peers/bin/pip install -r bench/requirements-peers.txt \
        && .venv-peers/bin/pip install --no-deps fer==25.10.3      # its own environment, never the app's
    PYTHONPATH=. .venv/bin/python bench/peers.py [--peer-python .venv-peers/bin/python] [--out runs/bench_peers.json]

`fer` needs TensorFlow (and pins packages that clash with ours), so it runs in its own virtual
environment: this script writes the images to a temporary folder, runs itself there with --as-peer
(`fer` only, no project code), and reads back its answers. Measured on both, in one run:
* ms per 640x480 frame (face detection + expression, one face, batch 1, median of 30);
* accuracy on FER2013 validation faces (48 px crops): ours through `EmotionPredictor`, fer given the
  whole crop as the face box (its detector finds few faces in tight crops); fer's own detection rate too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def as_peer(folder: Path) -> None:
    """Runs inside the peer environment: fer on every image in `folder`, answers as JSON on stdout."""
    import cv2
    from fer.fer import FER

    detector = FER(mtcnn=False)
    frame = cv2.imread(str(folder / "frame.png"))
    detector.detect_emotions(frame)  # warm-up
    times = []
    for _ in range(30):
        start = time.perf_counter()
        detector.detect_emotions(frame)
        times.append((time.perf_counter() - start) * 1000)
    answers, detected = [], 0
    for path in sorted((folder / "faces").glob("*.png")):
        face = cv2.imread(str(path))
        detected += bool(detector.detect_emotions(face))
        found = detector.detect_emotions(face, face_rectangles=[(0, 0, face.shape[1], face.shape[0])])
        emotions = found[0]["emotions"] if found else {}
        answers.append(max(emotions, key=emotions.get) if emotions else None)  # fer uses our label names
    print(json.dumps({"ms_per_frame": statistics.median(times), "answers": answers, "detected": detected}))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", type=Path, default=Path(".venv-peers/bin/python"))
    parser.add_argument(
        "--data-root", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    )
    parser.add_argument("--faces", type=int, default=None, help="FER2013 validation faces to score (default: all)")
    parser.add_argument("--as-peer", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.as_peer:
        return as_peer(args.as_peer) or {}

    from bench.common import print_table, time_calls, write_json
    from bench.serve import webcam_frame
    from fusion.hub import DEFAULT_MODEL
    from fusion.labels import EMOTIONS
    from fusion.predictor import EmotionPredictor
    from train.data import load_sources

    rows = load_sources([str(args.data_root / "fer2013" / "validation.parquet")])[0]["all"]
    rows = rows.select(range(min(args.faces, len(rows)))) if args.faces else rows
    faces, labels = list(rows["image"]), [EMOTIONS[i] for i in rows["label"]]
    frame = webcam_frame()
    predictor = EmotionPredictor.load(DEFAULT_MODEL)
    ours_ms = time_calls(lambda _: predictor.predict(image=frame), 30)["median_ms"]
    ours = [p.label for p in predictor.predict_batch([(face, None) for face in faces])]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame.save(folder / "frame.png")
        (folder / "faces").mkdir()
        for i, face in enumerate(faces):
            face.save(folder / "faces" / f"{i:05d}.png")
        done = subprocess.run(
            [str(args.peer_python), __file__, "--as-peer", str(folder)], capture_output=True, text=True
        )
    if done.returncode != 0:
        raise SystemExit(f"The peer run failed (is {args.peer_python} set up? see --help):\n{done.stderr[-2000:]}")
    peer = json.loads(done.stdout.strip().splitlines()[-1])
    accuracy = lambda answers: sum(a == b for a, b in zip(answers, labels, strict=True)) / len(labels)  # noqa: E731
    table = [
        {"system": "ours (offline default)", "ms_per_frame": ours_ms, "FER2013_val_accuracy": accuracy(ours),
         "faces_detected": f"{len(faces)} of {len(faces)} (crops are faces)"},
        {"system": "fer 25.10.3 (mini-Xception)", "ms_per_frame": peer["ms_per_frame"],
         "FER2013_val_accuracy": accuracy(peer["answers"]), "faces_detected": f"{peer['detected']} of {len(faces)}"},
    ]  # fmt: skip
    print(f"FER2013 validation: {len(faces)} faces; frame: 640x480 with one face; this machine's CPU, one run")
    print_table(table, list(table[0]))
    write_json(args.out, {"rows": table, "faces": len(faces)})
    return {"rows": table}


if __name__ == "__main__":
    main()
