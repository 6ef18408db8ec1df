"""The Live tab: the webcam stream is scored a couple of times a second (image only)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from fusion.batching import MicroBatcher
from fusion.predictor import NoFaceError

STREAM_EVERY = 0.5  # seconds between frames sent: enough for a live feel, light on a 2-vCPU Space
TIME_LIMIT = 120  # seconds a stream may run before the user restarts it
# A stream holds one of these slots for its whole life (Gradio keeps a streaming event running between
# frames), though it only waits between frames; frames from every stream share the micro-batcher.
# bench/live_load.py measures how many streams the CPU keeps under 500 ms a frame.
LIVE_STREAMS = 16
NO_FACE_LIVE = "**No face found**: face the camera, closer and in good light."


def build_live_tab(batcher: MicroBatcher) -> None:
    def score(frame: Any):
        if frame is None:
            return None, "Waiting for the camera..."
        try:
            result = batcher.predict(image=frame, max_faces=1)  # the label shown is the largest face's
        except NoFaceError:
            return None, NO_FACE_LIVE
        except ValueError as err:
            return None, str(err)
        return result.probabilities, result.note or ""

    with gr.Tab("Live", id="live"):
        gr.Markdown("Start the webcam: the emotion updates about twice a second.")
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
                label = gr.Label(label="Live emotion", num_top_classes=3, elem_id="live-emotion")
                note = gr.Markdown(elem_id="live-note")
        camera.stream(
            score,
            [camera],
            [label, note],
            stream_every=STREAM_EVERY,
            time_limit=TIME_LIMIT,
            concurrency_limit=LIVE_STREAMS,
            api_name="live",
            api_visibility="undocumented",  # not in the API docs; callable, so bench/live_load.py can drive it
        )
