"""Face detection with OpenCV's Haar cascade: every face as a square crop (largest first), or the centre."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

# Detection runs on a downscaled copy: Haar cost grows with pixel count (640 px: ~22 ms, 320 px:
# ~13 ms here), and a face that matters to the demo is still well above the cascade's 24 px window
# at 320 px (48 px in a 640x480 webcam frame).
DETECT_MAX_SIDE = 320
MIN_FACE = 24  # pixels at detection scale: the cascade's own window
# An image this small and about square is taken to be a face crop already (FER2013's are 48 px):
# detectors miss most tight crops (a cut-off chin and forehead), and the whole image is the face.
CROP_MAX_SIDE = 128
CROP_MIN_SIDE = 24  # smaller is an icon, not a face
CROP_ASPECT = (0.8, 1.25)
MAX_FACES = 10  # a group photo: the 10 largest faces are scored


@dataclass(frozen=True)
class FaceCrop:
    """The square region the model sees, in original image pixels (x0, y0, x1, y1)."""

    image: Image.Image
    box: tuple[int, int, int, int]
    face_found: bool
    faces: int = 0  # faces detected in the image (this is one of them)


@lru_cache(maxsize=1)
def _cascade() -> tuple[cv2.CascadeClassifier, threading.Lock]:
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV face cascade not found at {path}; install opencv-python-headless<5.")
    # CascadeClassifier is not documented as thread-safe; the app serves many threads.
    return cascade, threading.Lock()


def detect_faces(image: Image.Image) -> list[tuple[int, int, int, int]]:
    """Confident frontal faces as (x, y, w, h) in original pixels, largest first."""
    gray = np.asarray(image.convert("L"))
    scale = min(1.0, DETECT_MAX_SIDE / max(gray.shape))
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    cascade, lock = _cascade()
    with lock:
        found, _, weights = cascade.detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(MIN_FACE, MIN_FACE), outputRejectLevels=True
        )
    boxes = [tuple(int(round(v / scale)) for v in box) for box in np.asarray(found).reshape(-1, 4)]
    weights = np.asarray(weights, dtype=float).reshape(-1)
    if len(boxes) > 1:  # weak detections (a patch, a pattern) next to a confident face are false positives
        boxes = [b for b, w in zip(boxes, weights) if w >= weights.max() / 2]
    return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)


def square_box(cx: float, cy: float, side: float, width: int, height: int) -> tuple[int, int, int, int]:
    """A square of `side` centred on (cx, cy), shifted (then shrunk if needed) to fit the image."""
    side = int(round(min(side, width, height)))
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return x0, y0, x0 + side, y0 + side


def is_face_crop(image: Image.Image) -> bool:
    """A small (but not tiny), about square image: a face crop already (see CROP_MAX_SIDE)."""
    width, height = image.size
    small = CROP_MIN_SIDE <= min(width, height) and max(width, height) <= CROP_MAX_SIDE
    return small and CROP_ASPECT[0] <= width / height <= CROP_ASPECT[1]


def crop_faces(image: Image.Image, margin: float = 0.25, detect: bool = True, limit: int = MAX_FACES) -> list[FaceCrop]:
    """Every face (largest first, at most `limit`) plus `margin` (share of the face size per side), as squares.

    A small square-ish image is a face crop already: its centred square is the face. No face (or
    `detect=False`): an empty list.
    """
    width, height = image.size
    if detect and is_face_crop(image):
        box = square_box(width / 2, height / 2, min(width, height), width, height)
        return [FaceCrop(image=image.crop(box), box=box, face_found=True, faces=1)]
    found = detect_faces(image) if detect else []
    crops = []
    for x, y, w, h in found[:limit]:
        box = square_box(x + w / 2, y + h / 2, max(w, h) * (1 + 2 * margin), width, height)
        crops.append(FaceCrop(image=image.crop(box), box=box, face_found=True, faces=len(found)))
    return crops


def crop_face(image: Image.Image, margin: float = 0.25, detect: bool = True) -> FaceCrop:
    """The largest face (see `crop_faces`), or the centred square with `face_found=False`; never raises."""
    faces = crop_faces(image, margin, detect, limit=1)
    if faces:
        return faces[0]
    width, height = image.size
    box = square_box(width / 2, height / 2, min(width, height), width, height)
    return FaceCrop(image=image.crop(box), box=box, face_found=False, faces=0)
