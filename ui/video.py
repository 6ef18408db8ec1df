"""The Video tab: a short clip in, an emotion timeline, a per-frame CSV and the overall emotion out."""

from __future__ import annotations

import csv
import io

import gradio as gr
import pandas as pd

from fusion.doubt import close_call
from fusion.predictor import EmotionPredictor
from fusion.video import FRAMES_PER_SECOND, MAX_BYTES, MAX_SECONDS, VideoResult, score_video
from ui.chart import EMOTION_COLOURS, emotion_legend
from ui.files import BoundedFiles

LIMITS = (
    f"Clips up to {MAX_SECONDS:.0f} s and {MAX_BYTES // 2**20} MB; {FRAMES_PER_SECOND:g} frames are scored per "
    "second (face only). Frames with no face are gaps in the timeline."
)


def timeline(result: VideoResult, labels: list[str]) -> pd.DataFrame:
    """Long format for gr.LinePlot: one row per frame and emotion; no face = missing value (a gap)."""
    rows = [
        {
            "seconds": round(f.seconds, 2),
            "emotion": label,
            "probability": f.probabilities[label] if f.probabilities else None,
        }
        for f in result.frames
        for label in labels
    ]
    return pd.DataFrame(rows, columns=["seconds", "emotion", "probability"])


def csv_bytes(result: VideoResult, labels: list[str]) -> bytes:
    """One row per sampled frame: time, face found, label, the 7 probabilities (empty without a face)."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["seconds", "face_found", "label", *labels])
    for f in result.frames:
        probs = [f"{f.probabilities[label]:.4f}" for label in labels] if f.probabilities else [""] * len(labels)
        writer.writerow([f"{f.seconds:.2f}", f.face_found, f.label or "", *probs])
    return text.getvalue().encode()


def build_video_tab(predictor: EmotionPredictor, files: BoundedFiles) -> None:
    def analyse(video: str | None, progress=gr.Progress()):  # noqa: B008 - how Gradio injects progress
        """Score a short video: the emotion timeline, a per-frame CSV, the overall emotion and a summary.

        Args:
            video: an MP4, WebM, AVI or MOV clip with a face.
        """
        if not video:
            raise gr.Error("Upload a video first.", print_exception=False)
        progress(0, desc="Reading frames")
        try:
            result = score_video(predictor, video, progress=lambda share, what: progress(share, desc=what))
        except ValueError as err:
            raise gr.Error(str(err), print_exception=False) from None
        labels = predictor.labels
        summary = f"{len(result.frames)} frames scored from {result.duration:.1f} s; a face in {result.faces}."
        if result.label is None:
            summary += " No face was found in any frame: try a clip where the face is large and well lit."
        elif doubt := close_call(result.probabilities):
            summary += f" Overall, {doubt}."
        overall = result.probabilities or {}
        return timeline(result, labels), files.write(csv_bytes(result, labels), ".csv"), overall, summary

    with gr.Tab("Video", id="video"):
        gr.Markdown(LIMITS)
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload"], format=None, elem_id="video-input")
                button = gr.Button("Analyse video", variant="primary")
            with gr.Column():
                overall = gr.Label(label="Overall emotion (faces only)", num_top_classes=3, elem_id="video-overall")
                summary = gr.Markdown(elem_id="video-summary", label="Summary")
                table = gr.File(label="Per-frame results (CSV)", elem_id="video-csv")
        gr.HTML(emotion_legend(predictor.labels), elem_id="video-legend")  # always readable, above the lines
        plot = gr.LinePlot(
            x="seconds",
            y="probability",
            color="emotion",
            color_map={name: EMOTION_COLOURS[name] for name in predictor.labels if name in EMOTION_COLOURS},
            colors_in_legend=[],  # the plot's own legend is cut off below it: the legend above names every line
            color_title="",
            label="Emotions over time",
            y_lim=[0, 1],
            height=360,
            elem_id="video-plot",
        )
        button.click(analyse, [video], [plot, table, overall, summary], api_name="video", concurrency_limit=2)
