"""The command line, `python -m tests.synthetic --out DIR [--n 700] [--seed 0] [--format csv|disk] ...`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tests.synthetic.dataset import FORMATS, check, generate


def main(argv: list[str] | None = None) -> Path:
    """CLI entry point: parse and check `argv`, write the dataset, return its path."""
    description = sys.modules[__package__].__doc__  # the package's one-line docstring
    parser = argparse.ArgumentParser(prog="python -m tests.synthetic", description=description)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--n", type=int, default=700, help="number of samples (default 700)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--image-size", type=int, default=160, help="image side in pixels (default 160)")
    parser.add_argument("--ambiguous-face", type=float, default=0.25, help="share of rows with an unclear face")
    parser.add_argument("--ambiguous-text", type=float, default=0.25, help="share of rows with an unclear text")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="csv: data.csv + images/; disk: save_to_disk")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8), help="rendering processes")
    args = parser.parse_args(argv)
    problem = check(args.n, args.seed, args.image_size, args.ambiguous_face, args.ambiguous_text, args.format)
    if problem:
        parser.error(problem)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    path = generate(
        args.out,
        args.n,
        args.seed,
        args.image_size,
        args.ambiguous_face,
        args.ambiguous_text,
        args.format,
        progress=True,
        workers=args.workers,
    )
    print(f"Wrote {args.n} samples to {path}")
    return path
