"""Face detection: every face as an upright square crop, largest first (or the centre when there is none).

Two detectors, named by the model's preprocessing (`PreprocessCfg.detector`):
- "yunet": YuNet (libfacedetection from the `yuface` wheel, BSD-3, called by `fusion.yunet`): boxes and 5
  landmarks, robust to pose, small and partly hidden faces. The crop is framed like a FER2013 face: YuNet's box on FER2013's
  own crops is measured to be the crop itself (height 1.0x, centre on centre; `bench/face_framing.py`), so
  a square of the box's height around its centre, plus the margin, is what the network was trained on.
  With `align`, the crop is turned so the eyes are level.
- "haar": OpenCV's Haar cascade (frontal faces), for model folders saved before YuNet, and wherever the
  `yuface` wheel is not installed (it is built for CPython 3.11 on x86-64 only).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)
DETECTORS = ("haar", "yunet")
# Detection runs on a downscaled copy: cost grows with pixel count. Haar: a face that matters to the demo
# is still well above the cascade's 24 px window at 320 px. YuNet finds faces down to ~10 px: 640 px keeps
# the faces of a group photo.
DETECT_MAX_SIDE = {"haar": 320, "yunet": 640}
MIN_FACE = 24  # pixels at detection scale: the Haar cascade's own window
YUNET_MIN_SCORE = 60  # yuface's confidence (0-100); faces score 85-95, a face-like pattern less
# An image this small and about square is taken to be a face crop already (FER2013's are 48 px):
# detectors miss many tight crops (a cut-off chin and forehead), and the whole image is the face.
CROP_MAX_SIDE = 128
CROP_MIN_SIDE = 24  # smaller is an icon, not a face
CROP_ASPECT = (0.8, 1.25)
MAX_FACES = 10  # a group photo: the 10 largest faces are scored
# YuNet's box height on FER2013 crops is the crop's side; the registered margin (0.1) adds 20%, so the square
# the margin is applied to is the box height / 1.2.
YUNET_SIDE = 1 / 1.2
LEVEL_ABOVE = 3.0  # degrees: a face tilted less than this is cropped as it is
# Pictures up to this side that show no face are looked at again padded by PAD_SHARE per side (and enlarged to
# PADDED_MIN): tight face crops become findable (FER2013 crops: 80% found as they are, 93% padded).
PADDED_BELOW, PADDED_MIN, PAD_SHARE = 400, 160, 0.5


@dataclass(frozen=True)
class Detection:
    """A face in original image pixels: its square box (centre and side, before any margin), how sure the
    detector is (0-1), and the eyes (left and right in the image) when the detector gives them."""

    cx: float
    cy: float
    side: float
    score: float = 1.0
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None

    @property
    def tilt(self) -> float:
        """Degrees the eye line is turned from level (positive: the right eye lower)."""
        if self.eyes is None:
            return 0.0
        (lx, ly), (rx, ry) = self.eyes
        return math.degrees(math.atan2(ry - ly, rx - lx))


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


@lru_cache(maxsize=1)
def yunet_available() -> bool:
    try:
        import yuface  # noqa: F401
    except ImportError:
        logger.warning("The yuface wheel is not installed: faces are found with OpenCV's Haar cascade instead.")
        return False
    return True


def _scaled(image: Image.Image, detector: str) -> tuple[Image.Image, float]:
    scale = min(1.0, DETECT_MAX_SIDE[detector] / max(image.size))  # yunet
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BILINEAR)  # fmt: skip
    return image, scale


def _haar(image: Image.Image) -> list[Detection]:
    gray = np.asarray(image.convert("L"))
    scale = min(1.0, DETECT_MAX_SIDE["haar"] / max(gray.shape))
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
        boxes = [b for b, w in zip(boxes, weights, strict=True) if w >= weights.max() / 2]
    return [Detection(x + w / 2, y + h / 2, max(w, h)) for x, y, w, h in boxes]


def _yunet(image: Image.Image) -> list[Detection]:
    """YuNet's faces; when it finds none, once more with the picture padded (and small ones enlarged): a face
    that fills the whole frame, cut off at chin and forehead, is found once the detector sees a border."""
    small, scale = _scaled(image, "yunet")
    found = _yunet_pass(small, scale, 0.0, 0.0)
    if found or max(small.size) > PADDED_BELOW:
        return found
    grow = max(1.0, PADDED_MIN / max(small.size))
    inner = small.resize((round(small.width * grow), round(small.height * grow)), Image.Resampling.BICUBIC)
    fill = tuple(int(v) for v in np.asarray(inner.convert("RGB")).reshape(-1, 3).mean(0))
    pad = round(max(inner.size) * PAD_SHARE)
    canvas = Image.new("RGB", (inner.width + 2 * pad, inner.height + 2 * pad), fill)
    canvas.paste(inner.convert("RGB"), (pad, pad))
    return _yunet_pass(canvas, scale * grow, pad, pad)


def _yunet_pass(picture: Image.Image, scale: float, dx: float, dy: float) -> list[Detection]:
    """YuNet on `picture`, boxes mapped back to the original image (picture = original * scale, shifted by dx, dy)."""
    from fusion import yunet

    rows = yunet.detect(np.asarray(picture.convert("RGB"))[:, :, ::-1])
    found = []
    for score, x, y, w, h, *points in rows.tolist():
        if score <= YUNET_MIN_SCORE:  # above it, as yuface.detect(conf=...) kept them
            continue
        eyes = ((np.asarray(points[:4], dtype=float).reshape(2, 2) - (dx, dy)) / scale).tolist()
        found.append(Detection((x + w / 2 - dx) / scale, (y + h / 2 - dy) / scale, h / scale * YUNET_SIDE,
                               float(score) / 100, (tuple(eyes[0]), tuple(eyes[1]))))  # fmt: skip
    return found


def detector_in_use(detector: str) -> str:
    """The detector that runs when `detector` is asked for: "yunet" falls back to "haar" without the yuface wheel."""
    if detector not in DETECTORS:
        raise ValueError(f"Unknown face detector {detector!r}; use one of {DETECTORS}.")
    return "yunet" if detector == "yunet" and yunet_available() else "haar"


def detect_faces(image: Image.Image, detector: str = "haar") -> list[Detection]:
    """Confident faces, largest first (by `detector_in_use(detector)`)."""
    found = _yunet(image) if detector_in_use(detector) == "yunet" else _haar(image)
    return sorted(found, key=lambda d: d.side, reverse=True)  # stable: Haar's equal sides keep their order


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


def _crop(image: Image.Image, face: Detection, margin: float, align: bool) -> tuple[Image.Image, tuple]:
    """The face's square (plus margin) as an image, turned upright when `align`; and its box in the image."""
    side = face.side * (1 + 2 * margin)
    box = square_box(face.cx, face.cy, side, *image.size)
    if not align or abs(face.tilt) < LEVEL_ABOVE:
        return image.crop(box), box
    # Cut a region large enough for any rotation, turn it about the face centre, then take the square.
    reach = side * 0.75
    region = image.crop(
        (round(face.cx - reach), round(face.cy - reach), round(face.cx + reach), round(face.cy + reach))
    )
    turned = region.rotate(face.tilt, resample=Image.Resampling.BILINEAR, fillcolor=(128, 128, 128))
    centre = turned.width / 2
    size = box[2] - box[0]  # as the unturned crop, shrunk where the image edge cut it
    left = round(centre - size / 2)
    return turned.crop((left, left, left + size, left + size)), box


def crop_faces(
    image: Image.Image,
    margin: float = 0.25,
    detect: bool = True,
    limit: int = MAX_FACES,
    detector: str = "haar",
    align: bool = False,
) -> list[FaceCrop]:
    """Every face (largest first, at most `limit`) plus `margin` (share of the face size per side), as squares.

    A small square-ish image is a face crop already: its centred square is the face. No face (or
    `detect=False`): an empty list.
    """
    width, height = image.size
    if detect and is_face_crop(image):
        box = square_box(width / 2, height / 2, min(width, height), width, height)
        return [FaceCrop(image=image.crop(box), box=box, face_found=True, faces=1)]
    found = detect_faces(image, detector) if detect else []
    crops = []
    for face in found[:limit]:
        crop, box = _crop(image, face, margin, align)
        crops.append(FaceCrop(image=crop, box=box, face_found=True, faces=len(found)))
    return crops


def crop_face(
    image: Image.Image, margin: float = 0.25, detect: bool = True, detector: str = "haar", align: bool = False
) -> FaceCrop:
    """The largest face (see `crop_faces`), or the centred square with `face_found=False`; never raises."""
    faces = crop_faces(image, margin, detect, limit=1, detector=detector, align=align)
    if faces:
        return faces[0]
    width, height = image.size
    box = square_box(width / 2, height / 2, min(width, height), width, height)
    return FaceCrop(image=image.crop(box), box=box, face_found=False, faces=0)
