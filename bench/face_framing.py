"""Where YuNet puts its box on FER2013's own face crops: the framing a served crop must copy.

    PYTHONPATH=. python bench/face_framing.py [--data-root ../shared/data] [--faces 800] [--out runs/framing.json]

Each FER2013 validation crop (48 px) is enlarged 3x and set in the middle of a canvas twice its size, so the
detector sees the whole face; YuNet's box and landmarks are then expressed in units of the crop's side. The
median box height is the crop (1.0x) and its centre the crop's centre, which is what `fusion.faces`
takes for a FER2013-like crop (`YUNET_SIDE`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import print_table, write_json
from train.data import load_sources

DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SIDE = 144  # the crop enlarged 3x


def framing(image: Image.Image) -> list[float] | None:
    """[box centre x, centre y, width, height, eye-line y, mouth y] in crop sides from the crop's corner, or None."""
    from fusion import yunet

    crop = image.convert("RGB").resize((SIDE, SIDE), Image.BICUBIC)
    fill = tuple(int(v) for v in np.asarray(crop).reshape(-1, 3).mean(0))
    canvas = Image.new("RGB", (2 * SIDE, 2 * SIDE), fill)
    canvas.paste(crop, (SIDE // 2, SIDE // 2))
    rows = yunet.detect(np.asarray(canvas)[:, :, ::-1])
    rows = rows[rows[:, 0] > 50]  # yuface.detect(conf=0.5)
    boxes, landmarks = rows[:, 1:5], rows[:, 5:15]
    if not len(rows):
        return None
    i = int(np.argmax([w * h for _, _, w, h in boxes]))
    x, y, w, h = (float(v) for v in boxes[i])
    points = (np.asarray(landmarks[i], dtype=float).reshape(5, 2) - SIDE // 2) / SIDE
    offset = SIDE // 2
    return [(x + w / 2 - offset) / SIDE, (y + h / 2 - offset) / SIDE, w / SIDE, h / SIDE, points[:2, 1].mean(),
            points[3:, 1].mean()]  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--faces", type=int, default=800)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = load_sources([str(args.data_root / "fer2013" / "validation.parquet")])[0]["all"].shuffle(seed=0)
    found = [f for f in (framing(image) for image in rows.select(range(args.faces))["image"]) if f is not None]
    values = np.asarray(found)
    names = ["box centre x", "box centre y", "box width", "box height", "eye line y", "mouth y"]
    table = [{"measure (crop sides)": n, "median": float(np.median(c)), "mean": float(c.mean()), "sd": float(c.std())}
             for n, c in zip(names, values.T, strict=True)]  # fmt: skip
    print(f"YuNet found a face in {len(found)} of {args.faces} FER2013 validation crops")
    print_table(table, list(table[0]))
    result = {"faces": args.faces, "found": len(found), "rows": table}
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
