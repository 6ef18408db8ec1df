"""The Live tab: the webcam stream is scored a couple of times a second (image only), shown steadily."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from fusion.batching import MicroBatcher
from fusion.doubt import close_call
from fusion.predictor import NoFaceError

STREAM_EVERY = 0.5  # seconds between frames sent: enough for a live feel, light on a 2-vCPU Space
STEADY_SECONDS = 1.0  # the steady view averages the frames of about the last second
TIME_LIMIT = 120  # seconds a stream may run before the user restarts it
# A stream holds one of these slots for its whole life (Gradio keeps a streaming event running between
# frames), though it only waits between frames; frames from every stream share the micro-batcher.
# bench/live_load.py measures how many streams the CPU keeps under 500 ms a frame.
LIVE_STREAMS = 16
NO_FACE_LIVE = "**No face found**: face the camera, closer and in good light."
ABOUT = (
    f"Start the webcam: a frame is scored every {STREAM_EVERY:g} s ({1 / STREAM_EVERY:g} frames a second). "
    f"With **Steady view** on, the emotion shown is the average of the last {STEADY_SECONDS:g} s of frames, so it "
    "does not flicker; the per-frame answer is in the details below."
)


def steady(history: list[tuple[float, dict[str, float]]], now: float) -> dict[str, float]:
    """The mean probabilities of the frames within the last `STEADY_SECONDS` (the newest always counts)."""
    recent = [p for t, p in history if now - t < STEADY_SECONDS] or [history[-1][1]]
    return {label: sum(p[label] for p in recent) / len(recent) for label in recent[0]}


def build_live_tab(batcher: MicroBatcher) -> None:
    def score(frame: Any, steady_view: bool = True, history: list | None = None):
        """Score one webcam frame. Returns the emotion shown, a note, the frame's details and the recent frames."""
        history = list(history or [])
        if frame is None:
            return None, "Waiting for the camera...", None, history
        try:
            result = batcher.predict(image=frame, max_faces=1)  # the label shown is the largest face's
        except NoFaceError:
            return None, NO_FACE_LIVE, None, []  # a gap: the next face starts a fresh average
        except ValueError as err:
            return None, str(err), None, history
        now = time.monotonic()
        history = [(t, p) for t, p in history if now - t < STEADY_SECONDS] + [(now, result.probabilities)]
        shown = steady(history, now) if steady_view else result.probabilities
        doubt = close_call(shown)
        note = " ".join(n for n in (result.note if result.note and not result.doubt else None,
                                    f"Not sure: {doubt[len('not sure: '):]}." if doubt else None) if n)  # fmt: skip
        details = {"frame": result.probabilities, "shown": shown, "frames_averaged": len(history) if steady_view else 1,
                   "doubt": doubt, "detector": result.detector}  # fmt: skip
        return shown, note, details, history

    with gr.Tab("Live", id="live"):
        gr.Markdown(ABOUT, elem_id="live-about")
        with gr.Row():
            camera = gr.Image(
                sources=["webcam"],
                streaming=True,
                type="pil",
                label="Webcam",
                elem_id="live-webcam",
                webcam_options=gr.WebcamOptions(mirror=True),
            )
            with gr.Column():
                steady_view = gr.Checkbox(value=True, label=f"Steady view (average of the last {STEADY_SECONDS:g} s)",
                                          elem_id="live-steady")  # fmt: skip
                label = gr.Label(label="Live emotion", num_top_classes=3, elem_id="live-emotion")
                note = gr.Markdown(elem_id="live-note", label="Note")
                with gr.Accordion("Details (JSON): this frame and the steady view", open=False):
                    details = gr.JSON(label="Live details", elem_id="live-details")
        history = gr.State([])
        camera.stream(
            score,
            [camera, steady_view, history],
            [label, note, details, history],
            stream_every=STREAM_EVERY,
            time_limit=TIME_LIMIT,
            concurrency_limit=LIVE_STREAMS,
            api_name="live",
            api_visibility="undocumented",  # not in the API docs; callable, so bench/live_load.py can drive it
        )
