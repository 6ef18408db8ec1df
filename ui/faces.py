"""Every face found, numbered on the photo; the one fused with the text stands out."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageDraw, ImageFont

from fusion.preprocess import InvalidImageError, load_image

FUSED, OTHER = (255, 140, 0), (40, 170, 255)


def draw_faces(image: Any, details: dict[str, Any] | None) -> Image.Image | None:
    """The photo (upright, as the boxes were found) with numbered boxes; None without faces."""
    faces = (details or {}).get("faces") or []
    if not image or not faces:
        return None
    try:
        photo = load_image(image).copy()
    except InvalidImageError:
        return None
    draw = ImageDraw.Draw(photo)
    line = max(2, round(max(photo.size) / 200))
    font = ImageFont.load_default(size=max(14, round(max(photo.size) / 25)))
    for number, face in enumerate(faces, start=1):
        x0, y0, x1, y1 = face["box"]
        colour = FUSED if face["fused"] else OTHER
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=line * (2 if face["fused"] else 1))
        label = f"{number}: {max(face['probabilities'], key=face['probabilities'].get)}"
        left, top, right, bottom = draw.textbbox((x0, y0), label, font=font)
        draw.rectangle((left, top - (bottom - top), right + 4, top), fill=colour)
        draw.text((x0 + 2, y0 - (bottom - top)), label, fill="white", font=font)
    return photo
