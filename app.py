"""Gradio Space: a face image and/or a sentence in, probabilities over 7 emotions out.

    python app.py [--model FOLDER_OR_REPO] [--revision REV] [--port PORT]

Settings (flags win over environment variables):
  --model / EMOTION_MODEL              model folder or Hub repo id (default: the offline default)
  --revision / EMOTION_MODEL_REVISION  Hub branch, tag or commit
  --flag-dir / EMOTION_FLAG_DIR        where flags are stored (default: /data/flagged on a Space with
                                       persistent storage, else ./flagged; never served)
  --flag-dataset / EMOTION_FLAG_DATASET  Hub dataset repo that flags are synced to (private; needs HF_TOKEN)
  EMOTION_REVIEW_SECRET                enables the Review tab for maintainers who know it
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr  # noqa: E402

from flags.store import FlagStore, FlagStoreError, FlagStoreFullError  # noqa: E402
from fusion.batching import MicroBatcher  # noqa: E402
from fusion.labels import EMOTIONS  # noqa: E402
from fusion.predictor import EmotionPredictor  # noqa: E402
from ui.chart import modality_chart  # noqa: E402
from ui.files import MAX_FILES, BoundedFiles  # noqa: E402
from ui.flagging import FLAGS_PER_SESSION, FlagStoreCallback, RateLimit  # noqa: E402
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
FLAG_NOTICE = (
    "Flagging stores the image and the text you sent, with your correction, privately, so that maintainers "
    "can relabel them and retrain the model. Do not flag anything you do not want kept."
)
PERSISTENT = Path("/data")  # a Space's persistent storage, when it has some
DELETE_CACHE = (3600, 3600)  # every hour, Gradio deletes uploads and outputs older than an hour


def model_label(predictor: EmotionPredictor) -> str:
    """What the footer names: a Hub repo id, "offline default", or a local folder's name (never a path)."""
    from fusion.default_model import DEFAULT_MODEL_DIR

    source = Path(predictor.source)
    if source.is_dir():
        return "offline default" if source.resolve() == DEFAULT_MODEL_DIR.resolve() else f"local model {source.name}"
    return predictor.source + (f" @ {predictor.revision}" if predictor.revision else "")


def build_demo(
    predictor: EmotionPredictor,
    store: FlagStore,
    review_secret: str | None = None,
    max_batch: int = 8,
    notice: str | None = None,
    restore: Callable[[], int] | None = None,
    max_crops: int = MAX_FILES,
    flags_per_session: int = FLAGS_PER_SESSION,
) -> gr.Blocks:
    """The app: Predict, Live and (with a secret) Review tabs over one predictor and one flag store."""
    batcher = MicroBatcher(predictor, max_batch=max_batch)
    flagger = FlagStoreCallback(store, model=model_label(predictor), revision=predictor.revision)
    limit = RateLimit(flags_per_session)

    def predict(image: str | None = None, text: str | None = None) -> tuple[dict[str, float], dict[str, Any], Any]:
        """Predict the emotion of a face image, a text, or both.

        Args:
            image: a photo with a face (optional if text is given).
            text: a sentence (optional if an image is given).

        Returns: the 7 fused confidences, the full result as JSON (label, probabilities, image- and
        text-only probabilities, face_found, face_box, faces, note), and the face crop the model saw.
        """
        if text is not None and len(text) > MAX_TEXT_CHARS:
            raise gr.Error(
                f"The text has {len(text)} characters; the limit is {MAX_TEXT_CHARS}.", print_exception=False
            )
        try:
            result = batcher.predict(image=image, text=text)
        except ValueError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return result.probabilities, result.to_dict(), crops.write_jpeg(result.face_crop)

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
        return f"Thanks! Flagged as **{flagger.last.corrected}** (predicted {flagger.last.predicted})."

    with gr.Blocks(title="Multimodal emotion recognition", delete_cache=DELETE_CACHE) as demo:
        crops = BoundedFiles(Path(demo.GRADIO_CACHE) / "face-crops", keep=max_crops)
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
                        note = gr.Markdown(elem_id="prediction-note")
                        chart = gr.HTML(modality_chart(None), label="What each modality says")
                        crop = gr.Image(label="What the model saw", interactive=False, height=200, format="jpeg")
                        with gr.Accordion("Details (JSON)", open=False):
                            details = gr.JSON(label="Details")
                with gr.Accordion("Wrong? Flag it with the right emotion", open=False):
                    gr.Markdown(FLAG_NOTICE, elem_id="flag-notice")
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
                build_review_tab(store, review_secret, restore=restore)
        gr.Markdown(f"Model: `{model_label(predictor)}`", elem_id="model-footer")

        button.click(predict, [image, text], [label, details, crop], api_name="predict", concurrency_limit=16)
        details.change(modality_chart, details, chart, api_visibility="private", queue=False)
        details.change(_note_markdown, details, note, api_visibility="private", queue=False)
        flag_inputs = [image, text, details, corrected]
        flag_button.click(flag, flag_inputs, flag_status, api_visibility="private", preprocess=False)
    flagger.setup(flag_inputs, str(store.root))
    return demo


def _note_markdown(details: dict[str, Any] | None) -> str:
    """The answer's note (no face found, several faces), visible above the chart."""
    return f"**{details['note']}**" if details and details.get("note") else ""


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


def default_flag_dir() -> str:
    """Persistent storage when the Space has it (a restart keeps the flags), else a local folder."""
    if PERSISTENT.is_dir() and os.access(PERSISTENT, os.W_OK):
        return str(PERSISTENT / "flagged")
    return "flagged"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.getenv("EMOTION_MODEL"), help="model folder or Hub repo id")
    parser.add_argument("--revision", default=os.getenv("EMOTION_MODEL_REVISION"), help="Hub revision")
    parser.add_argument("--flag-dir", default=os.getenv("EMOTION_FLAG_DIR") or default_flag_dir(), help="flag store")
    parser.add_argument("--flag-dataset", default=os.getenv("EMOTION_FLAG_DATASET"), help="Hub dataset for flags")
    parser.add_argument("--port", type=int, default=None, help="server port (default: Gradio's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    predictor, notice = load_predictor(args.model, args.revision)
    predictor.warm_up()
    logger.info("Serving model %s", model_label(predictor))
    store, sync = FlagStore(args.flag_dir), None
    if args.flag_dataset:
        from flags.sync import FlagSync

        # Restores flags the dataset has and this disk lacks, uploads unsynced ones, then syncs every minute.
        sync = FlagSync(store, args.flag_dataset).start(interval=60)
        logger.info("Flags are synced with the dataset repo %s every 60 s", args.flag_dataset)
    demo = build_demo(
        predictor,
        store,
        review_secret=os.getenv("EMOTION_REVIEW_SECRET"),
        notice=notice,
        restore=sync.restore if sync else None,
    )
    demo.queue(default_concurrency_limit=2).launch(server_port=args.port, **LAUNCH_KWARGS)


if __name__ == "__main__":
    main()
