"""A deterministic, offline generator of paired (drawn face, sentence, label) emotion data.

    python -m train.synthetic --out data/synth [--n 700] [--seed 0] [--image-size 160] \
        [--ambiguous-face 0.25] [--ambiguous-text 0.25] [--format csv|disk] [--workers N]

Faces are drawn with PIL: mouth, brows, eyes, nose wrinkles and cheeks follow the label with a random
intensity, over varied skin tones, hair, head pose, backgrounds, lighting and noise. Sentences come
from per-emotion templates and vocabularies. A share of rows has an unclear face (near-zero expression,
sometimes occluded or blurred) with a clear sentence, another share an uninformative sentence with a
clear face, never both, so each modality alone tops out below 100% while the pair determines the
label. Every sample is drawn from its own generator seeded by (seed, index): the same arguments give
byte-identical files whatever the generation order.
"""

from __future__ import annotations

import argparse
import csv
import io
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from fusion.labels import EMOTIONS
from train.synthetic_faces import CLEAR_INTENSITY, OCCLUSIONS, UNCLEAR_INTENSITY, draw_face, pick
from train.synthetic_text import make_sentence

__all__ = ["draw_face", "generate", "main", "make_sample", "make_sentence", "plan"]

FORMATS = ("csv", "disk")

# ---------------------------------------------------------------------------------------------
# Datasets


@dataclass(frozen=True)
class Sample:
    """One generated row."""

    image: Image.Image
    text: str
    label: str
    face_clear: bool
    text_clear: bool


def plan(n: int, seed: int, ambiguous_face: float, ambiguous_text: float) -> list[tuple[str, bool, bool]]:
    """(label, face_clear, text_clear) per row: balanced labels, exact ambiguity shares spread over labels."""
    rng = np.random.default_rng([seed, 0])
    labels = np.array([EMOTIONS[i % len(EMOTIONS)] for i in range(n)])[rng.permutation(n)]
    order = [int(i) for label in EMOTIONS for i in rng.permutation(np.flatnonzero(labels == label))]
    n_face = int(n * ambiguous_face + 0.5)
    n_text = min(int(n * ambiguous_text + 0.5), n - n_face)
    face_pos = {int((k + 0.5) * n / n_face) for k in range(n_face)}
    rest = [p for p in range(n) if p not in face_pos]
    text_pos = {rest[int((k + 0.5) * len(rest) / n_text)] for k in range(n_text)}
    rows: list[tuple[str, bool, bool]] = [("", True, True)] * n
    for position, index in enumerate(order):
        rows[index] = (str(labels[index]), position not in face_pos, position not in text_pos)
    return rows


def make_sample(index: int, seed: int, label: str, face_clear: bool, text_clear: bool, size: int = 160) -> Sample:
    """Row `index` of a dataset; it depends only on its arguments, never on other rows."""
    face_rng = np.random.default_rng([seed, 1, index])
    text_rng = np.random.default_rng([seed, 2, index])
    if face_clear:
        image = draw_face(label, face_rng, size, face_rng.uniform(*CLEAR_INTENSITY))
    else:
        intensity = face_rng.uniform(*UNCLEAR_INTENSITY)
        occlusion = pick(face_rng, (None, None, *OCCLUSIONS))
        image = draw_face(label, face_rng, size, intensity, occlusion)
    return Sample(image, make_sentence(label, text_rng, clear=text_clear), label, face_clear, text_clear)


Rendered = tuple[bytes, str, str, bool, bool]  # png, text, label, face_clear, text_clear


def _render(job: tuple[int, int, str, bool, bool, int]) -> Rendered:
    index, seed, label, face_clear, text_clear, size = job
    s = make_sample(index, seed, label, face_clear, text_clear, size)
    return png_bytes(s.image), s.text, s.label, s.face_clear, s.text_clear


def _render_all(jobs: list[tuple[int, int, str, bool, bool, int]], workers: int) -> Iterator[Rendered]:
    """Rendered rows in order; with `workers` > 1 in that many processes (the output does not change)."""
    if workers <= 1:
        yield from map(_render, jobs)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_render, jobs, chunksize=16)


def png_bytes(image: Image.Image) -> bytes:
    """PNG without metadata, so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


def generate(
    out_dir: Path,
    n: int = 700,
    seed: int = 0,
    image_size: int = 160,
    ambiguous_face: float = 0.25,
    ambiguous_text: float = 0.25,
    fmt: str = "csv",
    progress: bool = False,
    workers: int = 1,
) -> Path:
    """Write `n` samples to `out_dir`; returns `out_dir/data.csv` ("csv") or `out_dir` ("disk").

    `workers` > 1 renders in that many processes; `progress` shows a tqdm bar.
    """
    problem = _check(n, seed, image_size, ambiguous_face, ambiguous_text, fmt)
    if problem:
        raise ValueError(problem)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(i, seed, *row, image_size) for i, row in enumerate(plan(n, seed, ambiguous_face, ambiguous_text))]
    rendered = tqdm(_render_all(jobs, workers), total=n, desc="synthetic", unit="sample", disable=not progress)
    if fmt == "disk":
        return _write_disk(out_dir, rendered)
    (out_dir / "images").mkdir(exist_ok=True)
    csv_path = out_dir / "data.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_path", "text", "label", "face_clear", "text_clear"])
        for i, (png, text, label, face_clear, text_clear) in enumerate(rendered):
            name = f"images/{i:05d}.png"
            (out_dir / name).write_bytes(png)
            writer.writerow([name, text, label, face_clear, text_clear])
    return csv_path


def _write_disk(out_dir: Path, rendered: Iterable[Rendered]) -> Path:
    from datasets import ClassLabel, Dataset, Features, Value
    from datasets import Image as ImageFeature

    features = Features(
        {
            "image": ImageFeature(),
            "text": Value("string"),
            "label": ClassLabel(names=list(EMOTIONS)),
            "face_clear": Value("bool"),
            "text_clear": Value("bool"),
        }
    )
    columns: dict[str, list] = {name: [] for name in features}
    for i, (png, text, label, face_clear, text_clear) in enumerate(rendered):
        columns["image"].append({"bytes": png, "path": f"{i:05d}.png"})
        columns["text"].append(text)
        columns["label"].append(EMOTIONS.index(label))
        columns["face_clear"].append(face_clear)
        columns["text_clear"].append(text_clear)
    Dataset.from_dict(columns, features=features).save_to_disk(str(out_dir))
    return out_dir


def _check(n: int, seed: int, image_size: int, ambiguous_face: float, ambiguous_text: float, fmt: str) -> str | None:
    """Why these arguments are invalid, or None."""
    if n < len(EMOTIONS):
        return f"--n must be at least {len(EMOTIONS)} (one sample per emotion), got {n}"
    if seed < 0:
        return f"--seed must be >= 0, got {seed}"
    if image_size < 48:
        return f"--image-size must be at least 48 pixels, got {image_size}"
    for name, share in (("ambiguous-face", ambiguous_face), ("ambiguous-text", ambiguous_text)):
        if not 0.0 <= share <= 1.0:
            return f"--{name} must be a share in [0, 1], got {share}"
    total = ambiguous_face + ambiguous_text
    if total > 1.0 + 1e-9:
        return f"--ambiguous-face + --ambiguous-text must be <= 1 (a row is never ambiguous twice), got {total:g}"
    if fmt not in FORMATS:
        return f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}"
    return None


def main(argv: list[str] | None = None) -> Path:
    """CLI entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m train.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--n", type=int, default=700, help="number of samples (default 700)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--image-size", type=int, default=160, help="image side in pixels (default 160)")
    parser.add_argument("--ambiguous-face", type=float, default=0.25, help="share of rows with an unclear face")
    parser.add_argument("--ambiguous-text", type=float, default=0.25, help="share of rows with an unclear text")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="csv: data.csv + images/; disk: save_to_disk")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8), help="rendering processes")
    args = parser.parse_args(argv)
    problem = _check(args.n, args.seed, args.image_size, args.ambiguous_face, args.ambiguous_text, args.format)
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


if __name__ == "__main__":
    main()
