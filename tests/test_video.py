"""Every face in a group photo, and videos: frames sampled, scored, no face = a gap; bad clips get clear errors."""

from __future__ import annotations

import wave

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from fusion.labels import EMOTIONS
from fusion.video import InvalidVideoError, read_frames, score_video
from tests.conftest import ASTRONAUT
from tests.synthetic.media import group_photo, write_clip


def test_every_face_in_a_group_is_found_and_scored(predictor):
    group, centres = group_photo()
    result = predictor.predict(image=group, text="we are all here")
    assert len(result.faces) == 3 and result.faces[0].fused  # largest first, the largest fused
    found = sorted((f.box[0] + f.box[2]) / 2 for f in result.faces)
    assert all(abs(a - b) < 30 for a, b in zip(found, centres, strict=True))
    assert len({tuple(f.probabilities.values()) for f in result.faces}) == 3  # each face answered for itself


def face_then_wall_clip(path) -> str:
    """2 s of faces (a different one every half second: the astronaut, two drawn faces, the astronaut mirrored),
    then 2 s of a blank wall, at 10 fps (320x320)."""
    from tests.synthetic import draw_face

    astronaut = Image.open(ASTRONAUT).convert("RGB").resize((320, 320))
    drawn = [draw_face(label, np.random.default_rng([21, i]), size=320) for i, label in enumerate(["angry", "sad"])]
    faces = [astronaut, *drawn, astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    wall = Image.new("RGB", (320, 320), (180, 170, 160))
    return write_clip(path, [face for face in faces for _ in range(5)] + [wall] * 20)


def test_frames_are_sampled_and_faceless_frames_are_gaps(predictor, tmp_path):
    clip = face_then_wall_clip(tmp_path / "clip.mp4")
    frames, duration = read_frames(clip)
    assert duration == pytest.approx(4.0, abs=0.15) and [t for t, _ in frames] == pytest.approx(
        [0.5 * i for i in range(8)]
    )
    ticks = []
    result = score_video(predictor, clip, progress=lambda share, what: ticks.append(share))
    assert [f.face_found for f in result.frames] == [True] * 4 + [False] * 4
    assert all(f.probabilities is None and f.label is None for f in result.frames[4:])  # gaps, not guesses
    assert result.label in EMOTIONS and ticks[-1] == 1.0
    assert len({tuple(f.probabilities.values()) for f in result.frames[:4]}) == 4  # four different faces
    mean = {k: sum(f.probabilities[k] for f in result.frames[:4]) / 4 for k in EMOTIONS}
    assert result.probabilities == pytest.approx(mean)
    for frame, face in zip(result.frames[:4], ("astronaut", "angry", "sad", "mirrored"), strict=True):
        alone = predictor.predict(image=frame_image(clip, frame.seconds)).probabilities
        assert frame.probabilities == pytest.approx(alone, abs=1e-4), face  # each frame scored as itself


def frame_image(clip: str, seconds: float) -> Image.Image:
    frames, _ = read_frames(clip)
    return next(image for t, image in frames if abs(t - seconds) < 1e-6)


def test_bad_videos_are_refused_with_the_reason(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(InvalidVideoError, match="could not be read as a video"):
        read_frames(corrupt)
    audio = tmp_path / "speech.wav"
    with wave.open(str(audio), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(8000)
        out.writeframes(np.zeros(8000, dtype=np.int16).tobytes())
    with pytest.raises(InvalidVideoError, match="hold only audio"):
        read_frames(audio)
    long = write_clip(tmp_path / "long.mp4", [Image.new("RGB", (64, 48), (9, 9, 9))] * 130, fps=2)  # 65 s
    with pytest.raises(InvalidVideoError, match="65 s long; the limit is 60 s"):
        read_frames(long)


def test_video_endpoint_through_the_client(client, tmp_path):
    plot, table, overall, summary = client.predict(
        handle_file(face_then_wall_clip(tmp_path / "c.mp4")), api_name="/video"
    )
    assert overall["label"] in EMOTIONS and "8 frames scored" in summary and "a face in 4" in summary
    rows = open(table).read().splitlines()
    assert rows[0].startswith("seconds,face_found,label,angry") and len(rows) == 9
    assert rows[5].startswith("2.00,False,,")  # the wall: no face, no numbers
    points = plot["data"]
    assert len(points) == 8 * 7 and sum(p[2] is None for p in points) == 4 * 7
    with pytest.raises(AppError, match="a still image, not a video"):
        client.predict(handle_file(str(ASTRONAUT)), api_name="/video")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(AppError, match="could not be read as a video"):
        client.predict(handle_file(str(corrupt)), api_name="/video")
    assert client.predict(text="still here", api_name="/predict")[1]["label"] in EMOTIONS
