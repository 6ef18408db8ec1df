"""Training on the generated dataset: fused vs image-only vs text-only accuracy, samples/s, and
epoch time with vs without the frozen-encoder feature cache.

    PYTHONPATH=. python bench/train_speed.py [--n 1400] [--epochs 3] [--out runs/bench_train.json]
    PYTHONPATH=. python bench/train_speed.py --data my.csv ...   # any data source instead

Runs the real training script (`train.train.main`) on the same data three ways: training
the image tower with the text encoder frozen (its accuracy row is the modality ablation),
frozen encoders without the cache, frozen encoders with the cache. Text
encoder: the packaged MiniLM; image encoder: ResNet-18 (random init offline: no ImageNet weights).
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
        **{f"test_{mode.split()[0]}": result["accuracy"] for mode, result in metrics["test"].items()},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="a data source (default: generate one with tests.synthetic)")
    parser.add_argument("--n", type=int, default=1400, help="rows to generate when --data is not given")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the frozen-encoder runs")
    parser.add_argument("--fine-tune-epochs", type=int, default=8, help="epochs of the image-tower run")
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.data is None:
        from tests.synthetic import generate

        args.data = str(generate(Path(tempfile.mkdtemp(prefix="synthetic-")), n=args.n, seed=0, image_size=128))
    runs = {
        # A randomly initialised ResNet needs a far larger learning rate than a pretrained encoder.
        "train image tower (text cached)": run(
            args.data, args.fine_tune_epochs, args.image_size, "--freeze-text", "--lr-encoder", "1e-3"
        ),
        "frozen, no cache": run(args.data, args.epochs, args.image_size, "--freeze-text", "--freeze-image", "--no-feature-cache"),
        "frozen, feature cache": run(args.data, args.epochs, args.image_size, "--freeze-text", "--freeze-image"),
    }  # fmt: skip
    rows = [{"setting": name, **result} for name, result in runs.items()]
    columns = ["setting", "cache_build_s", "first_epoch_s", "later_epoch_s", "samples_per_s"]
    print_table(rows, columns + ["test_image+text", "test_image", "test_text"])
    ratio = runs["frozen, no cache"]["later_epoch_s"] / runs["frozen, feature cache"]["later_epoch_s"]
    print(f"Epochs after the first, frozen encoders: {ratio:.1f}x faster with the feature cache")
    summary = {"rows": rows, "cache_speedup": ratio, "data": args.data, "epochs": args.epochs}
    write_json(args.out, summary)
    return summary


if __name__ == "__main__":
    main()
