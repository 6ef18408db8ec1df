"""Gradio Space: a face image and/or a sentence in, probabilities over 7 emotions out.

    python app.py [--model FOLDER_OR_REPO] [--revision REV] [--port PORT]

Settings (flags win over environment variables):
  --model / EMOTION_MODEL              model folder or Hub repo id (default: the offline default)
  --revision / EMOTION_MODEL_REVISION  Hub branch, tag or commit
  --flag-dir / EMOTION_FLAG_DIR        where flags are stored (default: ./flagged; never served)
  --flag-dataset / EMOTION_FLAG_DATASET  Hub dataset repo that flags are synced to (private; needs HF_TOKEN)
  EMOTION_REVIEW_SECRET                enables the Review tab for maintainers who know it
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr  # noqa: E402

from flags.store import FlagStore, FlagStoreError, atomic_write  # noqa: E402
from fusion.batching import MicroBatcher  # noqa: E402
from fusion.labels import EMOTIONS  # noqa: E402
from fusion.predictor import EmotionPredictor  # noqa: E402
from fusion.preprocess import load_image  # noqa: E402
from ui.chart import modality_chart  # noqa: E402
from ui.flagging import FlagStoreCallback  # noqa: E402
from ui.image_input import face_image  # noqa: E402
from ui.live import build_live_tab  # noqa: E402
from ui.review import build_review_tab  # noqa: E402

logger = logging.getLogger("app")
ROOT = Path(__file__).resolve().parent
MAX_TEXT_CHARS = 2000
LAUNCH_KWARGS: dict[str, Any] = {"max_file_size": "10mb"}
EXAMPLES = [
    [str(ROOT / "examples" / "astronaut.jpg"), "I can't believe we actually made it to space!"],
    [str(ROOT / "examples" / "astronaut.jpg"), ""],
    [None, "My flight got cancelled again and nobody will tell us why."],
    [None, "I keep hearing footsteps downstairs but I live alone."],
]


CROPS = Path(tempfile.gettempdir()) / "emotion-fusion-crops"


def crop_file(crop: Any) -> str | None:
    """The face crop as a content-named JPEG, written once (atomically).

    Gradio caches a returned PIL image by rewriting a content-named file on every request, so
    two users who get the same crop at once can be sent a file while it is being rewritten
    (a truncated download). A file that already exists is reused, never rewritten.
    """
    if crop is None:
        return None
    buffer = io.BytesIO()
    crop.convert("RGB").save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    path = CROPS / f"{hashlib.sha256(data).hexdigest()[:32]}.jpg"
    if not path.exists():
        CROPS.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    return str(path)


def build_demo(
    predictor: EmotionPredictor,
    flag_dir: str | Path = "flagged",
    review_secret: str | None = None,
    max_batch: int = 8,
    notice: str | None = None,
) -> gr.Blocks:
    batcher = MicroBatcher(predictor, max_batch=max_batch)
    flagger = FlagStoreCallback(model=predictor.source, revision=predictor.revision)

    def predict(image: str | None, text: str | None) -> tuple[dict[str, float], dict[str, Any], Any]:
        """Predict the emotion of a face image, a text, or both.

        Args:
            image: a photo with a face (optional if text is given).
            text: a sentence (optional if an image is given).

        Returns: the 7 fused confidences, the full result as JSON (label, probabilities, image- and
        text-only probabilities, face_found, face_box), and the face crop the model saw.
        """
        if text is not None and len(text) > MAX_TEXT_CHARS:
            raise gr.Error(
                f"The text has {len(text)} characters; the limit is {MAX_TEXT_CHARS}.", print_exception=False
            )
        try:
            result = batcher.predict(image=image, text=text)
        except ValueError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return result.probabilities, result.to_dict(), crop_file(result.face_crop)

    def flag(image: str | None, text: str | None, details: dict[str, Any] | None, corrected: str | None) -> str:
        if not details or "label" not in details:
            raise gr.Error("Predict first, then flag the result if it is wrong.", print_exception=False)
        if not corrected:
            raise gr.Error("Pick the correct emotion before flagging.", print_exception=False)
        try:
            record = flagger.save(load_image(image) if image else None, text, details, corrected)
        except FlagStoreError as err:
            logger.error("Flag not saved: %s", err)
            gr.Warning("Sorry, the flag could not be saved right now; your prediction is unaffected.")
            return "Flag not saved (storage problem)."
        except ValueError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return f"Thanks! Flagged as **{record.corrected}** (predicted {record.predicted})."

    with gr.Blocks(title="Multimodal emotion recognition") as demo:
        gr.Markdown(
            "# Multimodal emotion recognition\n"
            "Show a face, write a sentence, or both: the model fuses them into one of 7 emotions."
        )
        if notice:
            gr.Markdown(f"⚠️ {notice}", elem_id="notice")
        with gr.Tabs():
            with gr.Tab("Predict", id="predict"):
                with gr.Row():
                    with gr.Column():
                        image = face_image(
                            label="Face",
                            sources=["webcam", "upload"],
                            webcam_options=gr.WebcamOptions(mirror=True),
                        )
                        text = gr.Textbox(
                            label="Text", placeholder="How are you feeling?", lines=2, max_length=MAX_TEXT_CHARS
                        )
                        button = gr.Button("Predict", variant="primary")
                    with gr.Column():
                        label = gr.Label(label="Emotion", num_top_classes=len(EMOTIONS))
                        chart = gr.HTML(modality_chart(None), label="What each modality says")
                        crop = gr.Image(label="What the model saw", interactive=False, height=200, format="jpeg")
                        with gr.Accordion("Details (JSON)", open=False):
                            details = gr.JSON(label="Details")
                with gr.Accordion("Wrong? Flag it with the right emotion", open=False):
                    with gr.Row():
                        corrected = gr.Dropdown(choices=list(EMOTIONS), label="Correct emotion", value=None)
                        flag_button = gr.Button("Flag")
                    flag_status = gr.Markdown()
                gr.Examples(
                    examples=EXAMPLES,
                    inputs=[image, text],
                    outputs=[label, details],  # Gradio cannot cache an empty image output (text-only rows)
                    fn=lambda image, text: predict(image, text)[:2],
                    cache_examples=True,
                    cache_mode="lazy",
                    api_visibility="private",
                )
            build_live_tab(batcher)
            if review_secret:
                build_review_tab(FlagStore(flag_dir), review_secret)
        gr.Markdown(f"Model: `{predictor.source}`" + (f" @ `{predictor.revision}`" if predictor.revision else ""))

        button.click(predict, [image, text], [label, details, crop], api_name="predict", concurrency_limit=16)
        details.change(modality_chart, details, chart, api_visibility="private", queue=False)
        flag_button.click(flag, [image, text, details, corrected], flag_status, api_visibility="private")
    flagger.setup([image, text, details, corrected], str(flag_dir))
    return demo


def load_predictor(model: str | None, revision: str | None = None) -> tuple[EmotionPredictor, str | None]:
    """The configured model, or the offline default with a notice saying why it is served instead."""
    from fusion.default_model import ensure_default_model
    from fusion.hub import ModelSourceError

    notice = None
    if model:
        try:
            return EmotionPredictor.load(model, revision=revision), None
        except (ModelSourceError, OSError, ValueError) as err:
            notice = f"The configured model could not be loaded ({err}); serving the offline default model instead."
            logger.error(notice)
    return EmotionPredictor.load(ensure_default_model()), notice


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.getenv("EMOTION_MODEL"), help="model folder or Hub repo id")
    parser.add_argument("--revision", default=os.getenv("EMOTION_MODEL_REVISION"), help="Hub revision")
    parser.add_argument("--flag-dir", default=os.getenv("EMOTION_FLAG_DIR", "flagged"), help="flag store folder")
    parser.add_argument("--flag-dataset", default=os.getenv("EMOTION_FLAG_DATASET"), help="Hub dataset for flags")
    parser.add_argument("--port", type=int, default=None, help="server port (default: Gradio's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    predictor, notice = load_predictor(args.model, args.revision)
    predictor.warm_up()
    logger.info("Serving model %s%s", predictor.source, f" @ {predictor.revision}" if predictor.revision else "")
    demo = build_demo(
        predictor, flag_dir=args.flag_dir, review_secret=os.getenv("EMOTION_REVIEW_SECRET"), notice=notice
    )
    if args.flag_dataset:
        from flags.store import FlagStore
        from flags.sync import FlagSync

        FlagSync(FlagStore(args.flag_dir), args.flag_dataset).start(interval=60)
        logger.info("Flags are synced to the dataset repo %s every 60 s", args.flag_dataset)
    demo.queue(default_concurrency_limit=2).launch(server_port=args.port, **LAUNCH_KWARGS)


if __name__ == "__main__":
    main()
