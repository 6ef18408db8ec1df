"""Training speed: samples/s, and epoch time with vs without the frozen-encoder feature cache.

    PYTHONPATH=. python bench/train_speed.py [--data CSV] [--epochs 3] [--out runs/bench_train.json]

Runs the real training script (`train.train.main`) on the same data three ways: fine-tuning
(nothing frozen), frozen encoders without the cache, frozen encoders with the cache.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import print_table, write_json  # noqa: E402
from train.train import main as train_main  # noqa: E402


def run(data: str, epochs: int, image_size: int, *extra: str) -> dict:
    out = tempfile.mkdtemp(prefix="bench-train-")
    metrics = train_main(
        ["--data", data, "--output-dir", out, "--epochs", str(epochs), "--patience", str(epochs),
         "--no-pretrained-image", "--image-size", str(image_size), "--batch-size", "32", *extra]
    )  # fmt: skip
    history = metrics["history"]
    return {
        "cache_build_s": metrics.get("feature_cache_seconds") or 0.0,
        "first_epoch_s": history[0]["epoch_seconds"],
        "later_epoch_s": sum(h["epoch_seconds"] for h in history[1:]) / max(1, len(history) - 1),
        "samples_per_s": history[-1]["samples_per_second"],
        "test_accuracy": metrics["test"]["image+text"]["accuracy"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a data source (e.g. the generated dataset's CSV)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = {
        "fine-tune (nothing frozen)": run(args.data, args.epochs, args.image_size),
        "frozen, no cache": run(args.data, args.epochs, args.image_size, "--freeze-text", "--freeze-image", "--no-feature-cache"),
        "frozen, feature cache": run(args.data, args.epochs, args.image_size, "--freeze-text", "--freeze-image"),
    }  # fmt: skip
    rows = [{"setting": name, **result} for name, result in runs.items()]
    print_table(rows, ["setting", "cache_build_s", "first_epoch_s", "later_epoch_s", "samples_per_s", "test_accuracy"])
    ratio = runs["frozen, no cache"]["later_epoch_s"] / runs["frozen, feature cache"]["later_epoch_s"]
    print(f"Epochs after the first, frozen encoders: {ratio:.1f}x faster with the feature cache")
    summary = {"rows": rows, "cache_speedup": ratio, "data": args.data, "epochs": args.epochs}
    write_json(args.out, summary)
    return summary


if __name__ == "__main__":
    main()
