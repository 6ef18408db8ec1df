"""The Predict tab: face and/or text in; the emotion, what each modality and each face says, why, and flagging."""

from __future__ import annotations

import logging
import time
from typing import Any

import gradio as gr

from flags.store import FlagStoreError, FlagStoreFullError
from fusion.batching import MicroBatcher
from fusion.explain import explain_face, explain_text, overlay
from fusion.labels import EMOTIONS
from fusion.predictor import EmotionPredictor
from fusion.preprocess import MAX_TEXT_CHARS
from ui.chart import modality_chart
from ui.faces import draw_faces
from ui.files import BoundedFiles
from ui.flagging import FlagStoreCallback, RateLimit
from ui.image_input import face_image

logger = logging.getLogger("app")
FLAG_NOTICE = (
    "Flagging stores the image and the text you sent, with your correction, privately, so that maintainers "
    "can relabel them and retrain the model. Do not flag anything you do not want kept."
)


def build_predict_tab(
    predictor: EmotionPredictor,
    batcher: MicroBatcher,
    files: BoundedFiles,
    flagger: FlagStoreCallback,
    limit: RateLimit,
    examples: list[list[Any]],
) -> None:
    """Call inside a `gr.Blocks`: the public /predict and /explain endpoints and the private flag event."""

    def checked(text: str | None) -> None:
        if text is not None and len(text) > MAX_TEXT_CHARS:
            raise gr.Error(
                f"The text has {len(text)} characters; the limit is {MAX_TEXT_CHARS}.", print_exception=False
            )

    def predict(
        image: str | None = None, text: str | None = None, face: float | None = None
    ) -> tuple[dict[str, float], dict[str, Any], Any]:
        """Predict the emotion of a face image, a text, or both.

        Args:
            image: a photo with one or more faces (optional if text is given).
            text: a sentence (optional if an image is given).
            face: which face to fuse with the text, 1 = the largest (optional; every face is scored).

        Returns: the 7 fused confidences, the full result as JSON (label, probabilities, image- and
        text-only probabilities, face_found, face_box, faces: every face's box and probabilities, note),
        and the crop of the face fused with the text.
        """
        checked(text)
        try:
            result = batcher.predict(image=image, text=text, face=int(face) if face else None)
        except ValueError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return result.probabilities, result.to_dict(), files.write_jpeg(result.face_crop)

    def explain(image: str | None = None, text: str | None = None, face: float | None = None):
        """Why the model said it: each word's weight, and a heat-map over the fused face (slower than /predict).

        Returns: [(word, score)] where a score is the drop in the answer's text probability without the
        word, the face crop with a red heat-map of what mattered, and a one-line summary.
        """
        checked(text)
        started = time.perf_counter()
        try:
            result = predictor.predict(image=image, text=text, face=int(face) if face else None)
            words = explain_text(predictor, text, result.label) if result.text_probabilities else None
            heat = (
                overlay(result.face_crop, explain_face(predictor, result.face_crop, result.label)[0])
                if result.face_crop
                else None
            )
        except ValueError as err:
            raise gr.Error(str(err), print_exception=False) from None
        summary = (
            f"Why **{result.label}**: red words and regions raised it; leaving them out lowers its probability "
            f"(worked out in {time.perf_counter() - started:.1f} s)."
        )
        return words, files.write_jpeg(heat), summary

    def flag(image: Any, text: str | None, details: dict[str, Any] | None, corrected: str | None, request: gr.Request):
        if not details or "label" not in details:
            raise gr.Error("Predict first, then flag the result if it is wrong.", print_exception=False)
        if not corrected:
            raise gr.Error("Pick the correct emotion before flagging.", print_exception=False)
        if not limit.allow(request.session_hash or "anonymous"):
            raise gr.Error(
                "You have flagged a lot in the last few minutes; please try again later.", print_exception=False
            )
        try:
            flagger.flag([image, text, details, corrected])
        except FlagStoreFullError as err:
            raise gr.Error(str(err), print_exception=False) from None
        except FlagStoreError as err:
            logger.error("Flag not saved: %s", err)
            gr.Warning("Sorry, the flag could not be saved right now; your prediction is unaffected.")
            return "Flag not saved (storage problem)."
        except ValueError as err:
            raise gr.Error(str(err), print_exception=False) from None
        # from this request's own values: the callback is shared by every visitor
        return f"Thanks! Flagged as **{corrected}** (predicted {details['label']})."

    with gr.Tab("Predict", id="predict"):
        with gr.Row():
            with gr.Column():
                image = face_image(
                    label="Face", sources=["webcam", "upload"], webcam_options=gr.WebcamOptions(mirror=True)
                )
                text = gr.Textbox(label="Text", placeholder="How are you feeling?", lines=2, max_length=MAX_TEXT_CHARS)
                face_number = gr.Number(label="Face to fuse with the text", precision=0, minimum=1, value=1,
                                        info="1 = the largest; faces are numbered on the photo")  # fmt: skip
                face = gr.State(None)  # the UI's choice; API callers keep the two-input /predict (the largest face)
                with gr.Row():
                    button = gr.Button("Predict", variant="primary")
                    why = gr.Button("Why? (slower)")
            with gr.Column():
                label = gr.Label(label="Emotion", num_top_classes=len(EMOTIONS))
                note = gr.Markdown(elem_id="prediction-note", label="Note")
                chart = gr.HTML(modality_chart(None), label="What each modality says")
                with gr.Row():
                    crop = gr.Image(label="Face fused with the text", interactive=False, height=200, format="jpeg")
                    numbered = gr.Image(label="Faces found", interactive=False, height=200, format="jpeg")
                with gr.Accordion("Details (JSON)", open=False):
                    details = gr.JSON(label="Details")
        with gr.Accordion("Why? What drove the answer", open=False) as why_panel:
            why_summary = gr.Markdown(elem_id="why-summary", label="Why summary")
            with gr.Row():
                words = gr.HighlightedText(
                    label="Words (red: raised the answer)", combine_adjacent=False, elem_id="why-words"
                )
                heat = gr.Image(
                    label="Face regions (red: raised the answer)", interactive=False, height=200, elem_id="why-face"
                )
        with gr.Accordion("Wrong? Flag it with the right emotion", open=False):
            gr.Markdown(FLAG_NOTICE, elem_id="flag-notice")
            with gr.Row():
                corrected = gr.Dropdown(choices=list(EMOTIONS), label="Correct emotion", value=None)
                flag_button = gr.Button("Flag")
            flag_status = gr.Markdown()
        # Photo rows are cached (a face costs a detection and a CNN); text-only rows have no image to cache with
        # (Gradio warns on every start), and a text alone answers in milliseconds: they run when clicked.
        for title, rows, cached in (
            ("Examples: a photo", [r for r in examples if r[0] is not None], True),
            ("Examples: a text alone", [r for r in examples if r[0] is None], False),
        ):
            if rows:
                gr.Examples(
                    examples=rows,
                    inputs=[image, text],
                    label=title,
                    outputs=[label, details],
                    fn=lambda image, text: predict(image, text)[:2],
                    cache_examples=cached,
                    cache_mode="lazy" if cached else None,
                    run_on_click=True,
                    api_visibility="private",
                )

    inputs = [image, text, face]
    face_number.change(lambda number: number, face_number, face, queue=False, api_visibility="private")
    button.click(predict, inputs, [label, details, crop], api_name="predict", concurrency_limit=16)
    why.click(
        lambda: (gr.Accordion(open=True), "Working out why…"),
        None,
        [why_panel, why_summary],
        queue=False,
        api_visibility="private",
    )
    why.click(explain, inputs, [words, heat, why_summary], api_name="explain", concurrency_limit=2)
    details.change(modality_chart, details, chart, api_visibility="private", queue=False)
    details.change(_note_markdown, details, note, api_visibility="private", queue=False)
    details.change(
        lambda i, d: files.write_jpeg(draw_faces(i, d)), [image, details], numbered, api_visibility="private"
    )
    flag_inputs = [image, text, details, corrected]
    flag_button.click(flag, flag_inputs, flag_status, api_visibility="private", preprocess=False)
    flagger.setup(flag_inputs, str(flagger.store.root))


def _note_markdown(details: dict[str, Any] | None) -> str:
    """The answer's note (no face found, several faces), visible above the chart."""
    return f"**{details['note']}**" if details and details.get("note") else ""
