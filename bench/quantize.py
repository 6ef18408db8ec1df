"""int8 serving vs fp32 vs the original project's path: speed, batch 1.

    PYTHONPATH=. python bench/quantize.py [--repeats 30] [--out runs/bench_quantize.json]

A 640x480 webcam-like frame with one face + a 5-20 word text, batch 1, median of `repeats`.
BERT-base + ResNet-50 has random weights (speed does not depend on the values; no Hub here); its CNN
is calibrated on 300 FER2013 training faces. What int8 does to the answers: `bench/int8_agreement.py`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from bench.common import SHORT_TEXTS, print_table, time_calls, write_json  # noqa: E402
from bench.serve import BERT_BASE, original_path, webcam_frame  # noqa: E402
from fusion.encoders import packaged_minilm_path  # noqa: E402
from fusion.hub import DEFAULT_MODEL  # noqa: E402
from fusion.model import EmotionFusionModel  # noqa: E402
from fusion.predictor import EmotionPredictor  # noqa: E402
from fusion.preprocess import load_tokenizer  # noqa: E402
from fusion.quantize import CALIBRATION_FILE, calibrate_on_rows  # noqa: E402
from train.data import load_sources  # noqa: E402
from train.export import save_model_folder  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def bert_resnet50_folder(folder: Path) -> Path:
    """BERT-base + ResNet-50 (random weights) saved as a model folder, calibrated on 300 FER2013 faces."""
    import json

    torch.manual_seed(0)
    model = EmotionFusionModel(
        text_encoder={"config": BERT_BASE, "pooling": "pooler"}, image_encoder={"arch": "resnet50"}
    )
    tokenizer = load_tokenizer(packaged_minilm_path())
    save_model_folder(model.eval(), tokenizer, folder)
    stats = calibrate_on_rows(model, tokenizer, load_sources([str(DATA / "fer2013" / "train.parquet")])[0]["all"])
    (folder / CALIBRATION_FILE).write_text(json.dumps(stats))
    return folder


def speed(name: str, folder: Path, repeats: int, frame) -> dict:
    fp32, int8 = EmotionPredictor.load(folder), EmotionPredictor.load(folder, quantize="int8")
    call = lambda p: lambda i: p.predict(image=frame, text=SHORT_TEXTS[i % len(SHORT_TEXTS)])  # noqa: E731
    original = time_calls(original_path(fp32.model, fp32.preprocessor.tokenizer, frame), repeats)["median_ms"]
    a, b = time_calls(call(fp32), repeats)["median_ms"], time_calls(call(int8), repeats)["median_ms"]
    return {"model": name, "original_ms": original, "fp32_ms": a, "int8_ms": b, "int8_vs_original": original / b,
            "int8_vs_fp32": a / b}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    frame, default = webcam_frame(), DEFAULT_MODEL
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            speed("bert-base + resnet50", bert_resnet50_folder(Path(tmp)), args.repeats, frame),
            speed("offline default", default, args.repeats, frame),
        ]
    print_table(rows, list(rows[0]))
    write_json(args.out, {"repeats": args.repeats, "speed": rows})
    return {"speed": rows}


if __name__ == "__main__":
    main()
