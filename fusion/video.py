"""Video in, emotion timeline out: frames sampled at a fixed rate, scored in batches, no face = a gap.

Frames are read with OpenCV (its wheel brings FFmpeg). A clip is refused, with a message that says
the limit, when it is too large, too long, or has no video frames (a corrupt file, an audio file).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from fusion.predictor import EmotionPredictor, NoFaceError

MAX_SECONDS = 60.0
MAX_BYTES = 10 * 1024 * 1024  # as for images: the Space's upload limit
FRAMES_PER_SECOND = 2.0  # sampled: enough for a timeline, 120 frames at most
BATCH = 16


class InvalidVideoError(ValueError):
    """The video cannot be used; the message says why and what to send instead."""


@dataclass
class FrameResult:
    seconds: float
    face_found: bool
    probabilities: dict[str, float] | None  # None: no face in this frame (a gap, not a guess)
    label: str | None


@dataclass
class VideoResult:
    frames: list[FrameResult]
    label: str | None  # the emotion of the mean probabilities over frames with a face
    probabilities: dict[str, float] | None
    duration: float

    @property
    def faces(self) -> int:
        return sum(f.face_found for f in self.frames)


def read_frames(
    path: str | Path, every: float = 1 / FRAMES_PER_SECOND, max_seconds: float = MAX_SECONDS
) -> tuple[list[tuple[float, Image.Image]], float]:
    """(time in seconds, RGB frame) every `every` seconds, and the clip's duration; or `InvalidVideoError`."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InvalidVideoError(f"Video file not found: {path.name}.")
    if path.stat().st_size > MAX_BYTES:
        raise InvalidVideoError(f"The video is larger than {MAX_BYTES // 2**20} MB; send a shorter or smaller clip.")
    capture = cv2.VideoCapture(str(path))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        if not capture.isOpened() or not fps or fps <= 0 or count <= 0:
            raise InvalidVideoError(
                "The file could not be read as a video (it may be corrupt, or hold only audio). "
                "Send an MP4, WebM, AVI or MOV clip with a picture."
            )
        if count < 2:
            raise InvalidVideoError("This is a still image, not a video: use the Predict tab (or /predict) for photos.")
        duration = count / fps
        if duration > max_seconds + 1 / fps:
            raise InvalidVideoError(
                f"The video is {duration:.0f} s long; the limit is {max_seconds:.0f} s. Trim it and try again."
            )
        frames, step = [], max(1, round(fps * every))
        for index in range(math.ceil(count)):  # grab every frame (cheap), decode only the sampled ones
            if not capture.grab():
                break
            if index % step == 0:
                ok, bgr = capture.retrieve()
                if ok:
                    frames.append((index / fps, Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))))
    finally:
        capture.release()
    if not frames:
        raise InvalidVideoError("No frame of the video could be decoded; send an MP4, WebM, AVI or MOV clip.")
    return frames, duration


def score_video(
    predictor: EmotionPredictor, path: str | Path, progress: Callable[[float, str], None] | None = None
) -> VideoResult:
    """Every sampled frame through the predictor (image only, in batches); frames with no face stay empty."""
    frames, duration = read_frames(path)
    results: list[FrameResult] = []
    for start in range(0, len(frames), BATCH):
        chunk = frames[start : start + BATCH]
        answers = predictor.predict_batch([(image, None) for _, image in chunk], return_errors=True, max_faces=1)
        for (seconds, _), answer in zip(chunk, answers, strict=True):
            if isinstance(answer, NoFaceError):
                results.append(FrameResult(seconds, False, None, None))
            elif isinstance(answer, Exception):
                raise answer
            else:
                results.append(FrameResult(seconds, True, answer.probabilities, answer.label))
        if progress is not None:
            progress(min(1.0, (start + len(chunk)) / len(frames)), f"{start + len(chunk)} of {len(frames)} frames")
    scored = [f.probabilities for f in results if f.probabilities]
    if not scored:
        return VideoResult(results, None, None, duration)
    mean = {label: sum(p[label] for p in scored) / len(scored) for label in predictor.labels}
    return VideoResult(results, max(mean, key=mean.get), mean, duration)
