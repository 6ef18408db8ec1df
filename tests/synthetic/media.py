"""Generated test media: a group photo of drawn faces, and video clips written with OpenCV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.synthetic.faces import draw_face

# Drawn faces (label, seed, side) that OpenCV's Haar cascade finds, largest first.
GROUP = (("happy", 0, 200), ("angry", 0, 170), ("surprise", 2, 140))


def group_photo(faces: tuple[tuple[str, int, int], ...] = GROUP) -> tuple[Image.Image, list[int]]:
    """The faces side by side on a light wall, and the x of each face's centre."""
    drawn = [draw_face(label, np.random.default_rng([5, seed]), size=side) for label, seed, side in faces]
    group = Image.new("RGB", (sum(f.width for f in drawn) + 10 * (len(drawn) + 1), max(f.height for f in drawn) + 20),
                      (235, 235, 235))  # fmt: skip
    x, centres = 10, []
    for face in drawn:
        group.paste(face, (x, 10))
        centres.append(x + face.width // 2)
        x += face.width + 10
    return group, centres


def write_clip(path: str | Path, frames: list[Image.Image], fps: float = 10) -> str:
    """A clip of the frames, all the size of the first: MP4 (mp4v), or WebM (VP8, which browsers play) for .webm."""
    import cv2

    codec = "VP80" if str(path).endswith(".webm") else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, frames[0].size)
    for frame in frames:
        writer.write(cv2.cvtColor(np.asarray(frame.convert("RGB")), cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)
