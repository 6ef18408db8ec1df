"""Measure a model's image-encoder activation ranges for int8 serving (`int8_calibration.json`).

    python -m tools.calibrate_int8 --model FOLDER --data SOURCE [--split train] [--images 300] [--out FILE]

A few hundred training images go through the model's own preprocessing; the ranges are written
beside the weights (or to --out), and `EmotionPredictor.load(..., quantize="int8")` uses them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fusion.hub import load_model_folder
from fusion.quantize import CALIBRATION_FILE, calibrate_on_rows


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model folder")
    parser.add_argument("--data", required=True, help="data source with images (see train.data)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None, help=f"default: MODEL/{CALIBRATION_FILE}")
    args = parser.parse_args(argv)
    from train.data import load_sources

    by_split = load_sources([args.data])[0]
    rows = by_split.get(args.split, by_split.get("all"))
    model, tokenizer = load_model_folder(args.model)
    stats = calibrate_on_rows(model, tokenizer, rows, args.images)
    out = args.out or args.model / CALIBRATION_FILE
    out.write_text(json.dumps({**stats, "data": f"{args.data} [{args.split}]"}, indent=1) + "\n")
    print(f"Calibrated on {stats['images']} images; wrote {out}")
    return out


if __name__ == "__main__":
    main()
