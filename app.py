"""Gradio Space: a face image and/or a sentence in, probabilities over 7 emotions out.

    python app.py [--model FOLDER_OR_REPO] [--revision REV] [--port PORT]

The model comes from --model or $EMOTION_MODEL (a local folder or a Hub repo id, with
--revision / $EMOTION_MODEL_REVISION); with neither, the offline default is served.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from fusion.predictor import EmotionPredictor  # noqa: E402

logger = logging.getLogger("app")


def build_demo(predictor: EmotionPredictor) -> gr.Blocks:
    def predict(
        image: Image.Image | None, text: str | None
    ) -> tuple[dict[str, float], dict[str, Any], Image.Image | None]:
        """Predict the emotion of a face image, a text, or both.

        Args:
            image: a photo with a face (optional if text is given).
            text: a sentence (optional if an image is given).
        """
        try:
            result = predictor.predict(image=image, text=text)
        except ValueError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return result.probabilities, result.to_dict(), result.face_crop

    with gr.Blocks(title="Multimodal emotion recognition") as demo:
        gr.Markdown(
            "# Multimodal emotion recognition\n"
            "Show a face, write a sentence, or both: the model fuses them into one of 7 emotions."
        )
        with gr.Row():
            with gr.Column():
                image = gr.Image(
                    label="Face",
                    sources=["webcam", "upload"],
                    type="pil",
                    webcam_options=gr.WebcamOptions(mirror=True),
                )
                text = gr.Textbox(label="Text", placeholder="How are you feeling?", lines=2)
                button = gr.Button("Predict", variant="primary")
            with gr.Column():
                label = gr.Label(label="Emotion", num_top_classes=7)
                crop = gr.Image(label="What the model saw", interactive=False)
                details = gr.JSON(label="Details")
        gr.Markdown(f"Model: `{predictor.source}`" + (f" @ `{predictor.revision}`" if predictor.revision else ""))
        button.click(predict, inputs=[image, text], outputs=[label, details, crop], api_name="predict")
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.getenv("EMOTION_MODEL"), help="model folder or Hub repo id")
    parser.add_argument("--revision", default=os.getenv("EMOTION_MODEL_REVISION"), help="Hub revision")
    parser.add_argument("--port", type=int, default=None, help="server port (default: Gradio's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.model:
        source = args.model
    else:  # a local folder: nothing is fetched from the Hub
        from fusion.default_model import ensure_default_model

        source = str(ensure_default_model())
    predictor = EmotionPredictor.load(source, revision=args.revision)
    logger.info("Serving model %s%s", source, f" @ {args.revision}" if args.revision else "")
    build_demo(predictor).queue(default_concurrency_limit=2).launch(server_port=args.port)


if __name__ == "__main__":
    main()
