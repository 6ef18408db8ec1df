"""Rendering the planned rows, in one or more processes, and writing them as CSV + PNGs or a saved dataset."""

from __future__ import annotations

import csv
import io
import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from fusion.labels import EMOTIONS
from tests.synthetic.samples import make_sample, plan

FORMATS = ("csv", "disk")

Job = tuple[int, int, str, bool, bool, int]  # index, seed, label, face_clear, text_clear, size
Rendered = tuple[bytes, str, str, bool, bool]  # png, text, label, face_clear, text_clear


def _render(job: Job) -> Rendered:
    index, seed, label, face_clear, text_clear, size = job
    s = make_sample(index, seed, label, face_clear, text_clear, size)
    return png_bytes(s.image), s.text, s.label, s.face_clear, s.text_clear


def _render_all(jobs: list[Job], workers: int) -> Iterator[Rendered]:
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
    problem = check(n, seed, image_size, ambiguous_face, ambiguous_text, fmt)
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


def check(n: int, seed: int, image_size: int, ambiguous_face: float, ambiguous_text: float, fmt: str) -> str | None:
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
