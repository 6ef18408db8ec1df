"""What one request costs on model folders side by side (e.g. the default before and after a retrain).

    PYTHONPATH=. python bench/serving_cost.py --models OLD_FOLDER NEW_FOLDER [--repeats 30] [--out runs/cost.json]

Each folder served as the app serves it (`EmotionPredictor.load`, fp32 and `quantize="int8"`), batch 1: a
640x480 webcam-like frame with one face + a 5-20 word text, the frame alone, the text alone; the median of
`repeats` calls, in one run, the servings taking turns call by call (fair on a shared CPU), and each row's
ratio to the first folder's fp32 face + text request.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import SHORT_TEXTS, environment, print_table, time_interleaved, write_json  # noqa: E402
from bench.serve import webcam_frame  # noqa: E402
from fusion.predictor import EmotionPredictor  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="model folders (the first is the reference)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    frame = webcam_frame()
    requests = {
        "face + text": lambda p, i: p.predict(image=frame, text=SHORT_TEXTS[i % len(SHORT_TEXTS)]),
        "face": lambda p, i: p.predict(image=frame),
        "text": lambda p, i: p.predict(text=SHORT_TEXTS[i % len(SHORT_TEXTS)]),
    }
    served = {(folder, quantize): EmotionPredictor.load(folder, quantize=quantize)
              for folder in args.models for quantize in ("none", "int8")}  # fmt: skip
    medians = {
        name: time_interleaved({key: lambda i, c=call, p=p: c(p, i) for key, p in served.items()}, args.repeats)
        for name, call in requests.items()
    }
    rows = []
    for folder, quantize in served:
        row = {"model": folder, "weights": "fp32" if quantize == "none" else quantize}
        row |= {f"{name} ms": medians[name][folder, quantize] for name in requests}
        row["vs first, face + text"] = f"{row['face + text ms'] / medians['face + text'][args.models[0], 'none']:.2f}x"
        rows.append(row)
    print_table(rows, list(rows[0]))
    result = {"rows": rows, "environment": environment()}
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
