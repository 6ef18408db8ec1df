"""The Live tab: the webcam stream is scored a couple of times a second (image only)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from fusion.batching import MicroBatcher

STREAM_EVERY = 0.5  # seconds between frames sent: enough for a live feel, light on a 2-vCPU Space
TIME_LIMIT = 120  # seconds a stream may run before the user restarts it


def build_live_tab(batcher: MicroBatcher) -> None:
    def score(frame: Any):
        if frame is None:
            return None, "Waiting for the camera..."
        try:
            result = batcher.predict(image=frame)
        except ValueError as err:
            return None, str(err)
        note = "" if result.face_found else "No face found: using the centre of the frame."
        return result.probabilities, note

    with gr.Tab("Live", id="live"):
        gr.Markdown("Start the webcam: the emotion updates about twice a second.")
        with gr.Row():
            camera = gr.Image(
                sources=["webcam"],
                streaming=True,
                type="pil",
                label="Webcam",
                webcam_options=gr.WebcamOptions(mirror=True),
            )
            with gr.Column():
                label = gr.Label(label="Live emotion", num_top_classes=3)
                note = gr.Markdown()
        camera.stream(
            score,
            [camera],
            [label, note],
            stream_every=STREAM_EVERY,
            time_limit=TIME_LIMIT,
            concurrency_limit=2,
            api_visibility="private",
        )
