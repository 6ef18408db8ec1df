"""Gradio Space: a face image and/or a sentence in, probabilities over 7 emotions out.

    python app.py [--model FOLDER_OR_REPO] [--revision REV] [--port PORT]

Settings (flags win over environment variables):
  --model / EMOTION_MODEL              model folder or Hub repo id (default: the offline default)
  --revision / EMOTION_MODEL_REVISION  Hub branch, tag or commit
  --quantize / EMOTION_QUANTIZE        "int8": the face CNN in int8 on the CPU (a little faster; texts answer as fp32)
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
# Gradio's queue rebuilds a pandas summary of up to 10,000 past events after every event by default
# (2-6 ms of CPU per request here); once per 100 events is plenty for its monitoring page.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")

import gradio as gr  # noqa: E402

from flags.store import FlagStore  # noqa: E402
from fusion.batching import MicroBatcher  # noqa: E402
from fusion.predictor import EmotionPredictor  # noqa: E402
from ui.files import MAX_FILES, BoundedFiles  # noqa: E402
from ui.flagging import FLAGS_PER_SESSION, FlagStoreCallback, RateLimit  # noqa: E402
from ui.live import build_live_tab  # noqa: E402
from ui.predict import MAX_TEXT_CHARS, build_predict_tab  # noqa: E402
from ui.review import build_review_tab  # noqa: E402
from ui.video import build_video_tab  # noqa: E402

logger = logging.getLogger("app")
ROOT = Path(__file__).resolve().parent
LAUNCH_KWARGS: dict[str, Any] = {"max_file_size": "10mb"}
EXAMPLES = [
    [str(ROOT / "examples" / "astronaut.jpg"), "I can't believe we actually made it to space!"],
    [str(ROOT / "examples" / "astronaut.jpg"), ""],
    [None, "My flight got cancelled again and nobody will tell us why."],
    [None, "I keep hearing footsteps downstairs but I live alone."],
]
PERSISTENT = Path("/data")  # a Space's persistent storage, when it has some
DELETE_CACHE = (3600, 3600)  # every hour, Gradio deletes uploads and outputs older than an hour
__all__ = ["MAX_TEXT_CHARS", "build_demo", "main"]


def model_label(predictor: EmotionPredictor) -> str:
    """What the footer names: a Hub repo id, "offline default", or a local folder's name (never a path)."""
    from fusion.hub import DEFAULT_MODEL

    source = Path(predictor.source)
    if source.is_dir():
        return "offline default" if source.resolve() == DEFAULT_MODEL.resolve() else f"local model {source.name}"
    return predictor.source + (f" @ {predictor.revision}" if predictor.revision else "")


def build_demo(
    predictor: EmotionPredictor,
    store: FlagStore,
    review_secret: str | None = None,
    max_batch: int = 8,
    notice: str | None = None,
    restore: Callable[[], int] | None = None,
    max_files: int = MAX_FILES,
    flags_per_session: int = FLAGS_PER_SESSION,
    warm_up: bool = False,
) -> gr.Blocks:
    """The app: Predict, Live, Video and (with a secret) Review tabs over one predictor and one flag store."""
    batcher = MicroBatcher(predictor, max_batch=max_batch, warm_up=warm_up)
    flagger = FlagStoreCallback(store, model=model_label(predictor), revision=predictor.revision)
    with gr.Blocks(title="Multimodal emotion recognition", delete_cache=DELETE_CACHE) as demo:
        files = BoundedFiles(
            Path(demo.GRADIO_CACHE) / "emotion-files", keep=max_files
        )  # in Gradio's cache: served as is
        gr.Markdown(
            "# Multimodal emotion recognition\n"
            "Show a face, write a sentence, or both: the model fuses them into one of 7 emotions."
        )
        if notice:
            gr.Markdown(f"⚠️ {notice}", elem_id="notice")
        with gr.Tabs():
            build_predict_tab(predictor, batcher, files, flagger, RateLimit(flags_per_session), EXAMPLES)
            build_live_tab(batcher)
            build_video_tab(predictor, files)
            if review_secret:
                build_review_tab(store, review_secret, restore=restore)
        gr.Markdown(footer(predictor), elem_id="model-footer")
    return demo


def footer(predictor: EmotionPredictor) -> str:
    """The model served and, when OpenCV's Haar cascade looks for faces instead of YuNet, that and why."""
    text = f"Model: `{model_label(predictor)}`"
    if predictor.preprocessor.detector == "haar":
        why = ("the `yuface` wheel is not installed here" if predictor.preprocessor.cfg.detector == "yunet"
               else "this model asks for it")  # fmt: skip
        text += f" · Faces are found by OpenCV's Haar cascade ({why}): it misses more faces than YuNet."
    return text


def load_predictor(
    model: str | None, revision: str | None = None, quantize: str = "none"
) -> tuple[EmotionPredictor, str | None]:
    """The configured model, or the offline default with a notice saying why it is served instead."""
    from fusion.hub import DEFAULT_MODEL, ModelSourceError

    notice = None
    if model:
        try:
            return EmotionPredictor.load(model, revision=revision, quantize=quantize), None
        except (ModelSourceError, OSError, ValueError) as err:
            notice = f"The configured model could not be loaded ({err}); serving the offline default model instead."
            logger.error(notice)
    return EmotionPredictor.load(DEFAULT_MODEL, quantize=quantize), notice


def default_flag_dir() -> str:
    """Persistent storage when the Space has it (a restart keeps the flags), else a local folder."""
    if PERSISTENT.is_dir() and os.access(PERSISTENT, os.W_OK):
        return str(PERSISTENT / "flagged")
    return "flagged"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.getenv("EMOTION_MODEL"), help="model folder or Hub repo id")
    parser.add_argument("--revision", default=os.getenv("EMOTION_MODEL_REVISION"), help="Hub revision")
    parser.add_argument("--quantize", default=os.getenv("EMOTION_QUANTIZE") or "none", choices=["none", "int8"],
                        help="int8: faster CPU serving (default: none, fp32)")  # fmt: skip
    parser.add_argument("--flag-dir", default=os.getenv("EMOTION_FLAG_DIR") or default_flag_dir(), help="flag store")
    parser.add_argument("--flag-dataset", default=os.getenv("EMOTION_FLAG_DATASET"), help="Hub dataset for flags")
    parser.add_argument("--port", type=int, default=None, help="server port (default: Gradio's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    predictor, notice = load_predictor(args.model, args.revision, args.quantize)
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
        warm_up=True,
    )
    demo.queue(default_concurrency_limit=2).launch(server_port=args.port, **LAUNCH_KWARGS)


if __name__ == "__main__":
    main()
