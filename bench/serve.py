"""Batch-1 serving latency: our predictor vs the original project's path vs the bare encoders.

    PYTHONPATH=. python bench/serve.py [--repeats 30] [--out runs/bench_serve.json]

Same weights on every path (randomly initialised where no weights ship: speed does not depend
on the values). Original path: every text padded to 128 tokens, the whole 640x480 frame resized
to 224 (no face crop), batch of 1, `torch.no_grad` instead of `inference_mode`. Ours: the
predictor (face crop, dynamic padding, `inference_mode`). Floor: the two encoders alone on
already-prepared tensors (short tokens, one 224x224 image).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench.common import SHORT_TEXTS, print_table, time_calls, write_json  # noqa: E402
from fusion.encoders import packaged_minilm_path  # noqa: E402
from fusion.model import EmotionFusionModel, create_model  # noqa: E402
from fusion.ngrams import ngram_batch  # noqa: E402
from fusion.predictor import EmotionPredictor  # noqa: E402
from fusion.preprocess import image_transform, load_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BERT_BASE = {
    "model_type": "bert", "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12,
    "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512,
}  # fmt: skip


def webcam_frame() -> Image.Image:
    """A 640x480 frame with the example face in it (about 100 px wide, found by the detector), like a webcam."""
    frame = Image.new("RGB", (640, 480), (70, 80, 90))
    face = Image.open(ROOT / "examples" / "astronaut.jpg").convert("RGB").resize((480, 480))
    frame.paste(face, (80, 0))
    return frame


def models() -> dict[str, tuple[EmotionFusionModel, object]]:
    tokenizer = load_tokenizer(packaged_minilm_path())
    torch.manual_seed(0)
    found = {
        "bert-base + resnet50": (
            EmotionFusionModel(
                text_encoder={"config": BERT_BASE, "pooling": "pooler"}, image_encoder={"arch": "resnet50"}
            ),
            tokenizer,
        ),
        "minilm + resnet18": (create_model("minilm-l6", "resnet18", pretrained_image=False), tokenizer),
    }
    from fusion.hub import DEFAULT_MODEL, load_model_folder

    found["offline default"] = load_model_folder(DEFAULT_MODEL)
    return found


def original_path(model: EmotionFusionModel, tokenizer, frame: Image.Image):
    """How the original project served: fixed 128-token padding, whole frame, no inference_mode."""
    transform = image_transform(model.preprocess_cfg, is_train=False)

    def call(i: int) -> None:
        tokens = tokenizer(SHORT_TEXTS[i % len(SHORT_TEXTS)], padding="max_length", max_length=128,
                           truncation=True, return_tensors="pt")  # fmt: skip
        pixels = transform(frame).unsqueeze(0)
        ngrams = {}  # a router that reads n-grams needs them on every path (the routed default's does)
        if model.preprocess_cfg.text_ngrams:
            ngrams = ngram_batch([SHORT_TEXTS[i % len(SHORT_TEXTS)]], model.preprocess_cfg.text_ngrams)
        with torch.no_grad():
            torch.softmax(model(pixels, tokens["input_ids"], tokens["attention_mask"], **ngrams).logits, -1)

    return call


def our_path(predictor: EmotionPredictor, frame: Image.Image):
    return lambda i: predictor.predict(image=frame, text=SHORT_TEXTS[i % len(SHORT_TEXTS)])


def floor_path(model: EmotionFusionModel, predictor: EmotionPredictor, frame: Image.Image):
    face = predictor.preprocessor.image_tensor(predictor.preprocessor.face(frame)).unsqueeze(0)
    tokens = [predictor.preprocessor.tokenize([t]) for t in SHORT_TEXTS]

    @torch.inference_mode()
    def call(i: int) -> None:
        batch = tokens[i % len(tokens)]
        model.encode_text(batch["input_ids"], batch["attention_mask"])
        model.encode_image(face)

    return call


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    frame = webcam_frame()
    rows = []
    for name, (model, tokenizer) in models().items():
        model.eval()
        predictor = EmotionPredictor(model, tokenizer, source=name)
        ours = time_calls(our_path(predictor, frame), args.repeats)
        original = time_calls(original_path(model, tokenizer, frame), args.repeats)
        floor = time_calls(floor_path(model, predictor, frame), args.repeats)
        rows.append(
            {
                "model": name,
                "original_ms": original["median_ms"],
                "ours_ms": ours["median_ms"],
                "ours_p95_ms": ours["p95_ms"],
                "floor_ms": floor["median_ms"],
                "speedup": original["median_ms"] / ours["median_ms"],
                "ours_vs_floor": ours["median_ms"] / floor["median_ms"],
                "detail": {"ours": ours, "original": original, "floor": floor},
            }
        )
    print_table(rows, ["model", "original_ms", "ours_ms", "ours_p95_ms", "floor_ms", "speedup", "ours_vs_floor"])
    write_json(args.out, {"repeats": args.repeats, "rows": rows})
    return {"rows": rows}


if __name__ == "__main__":
    main()
