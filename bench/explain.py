"""What "Why?" costs: a plain prediction vs word and face explanations, and scoring every face / a video.

    PYTHONPATH=. python bench/explain.py [--repeats 20] [--out runs/bench_explain.json]

The offline default model, batch 1, on this machine's CPU: a 640x480 webcam-like frame with one face
and a 10-word text; a group photo with three faces; a 10 s clip (20 sampled frames).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import print_table, time_calls, write_json  # noqa: E402
from bench.serve import webcam_frame  # noqa: E402
from fusion.explain import explain_face, explain_text  # noqa: E402
from fusion.hub import DEFAULT_MODEL  # noqa: E402
from fusion.predictor import EmotionPredictor  # noqa: E402
from fusion.video import score_video  # noqa: E402
from tests.synthetic.media import group_photo, write_clip  # noqa: E402

TEXT = "I really cannot believe they cancelled the show again tonight"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    predictor = EmotionPredictor.load(DEFAULT_MODEL)
    frame, group = webcam_frame(), group_photo()[0]
    crop = predictor.predict(image=frame).face_crop
    clip = write_clip(Path(tempfile.mkdtemp()) / "clip.mp4", [frame] * 100, fps=10)  # 10 s
    timings = {
        "predict (face + text)": time_calls(lambda _: predictor.predict(image=frame, text=TEXT), args.repeats),
        "why: words (10 variants)": time_calls(lambda _: explain_text(predictor, TEXT), args.repeats),
        "why: face heat-map (82 variants)": time_calls(lambda _: explain_face(predictor, crop), args.repeats),
        "every face: 3-face group photo": time_calls(lambda _: predictor.predict(image=group), args.repeats),
        "video: 10 s clip, 20 frames": time_calls(lambda _: score_video(predictor, clip), max(3, args.repeats // 5), 1),
    }
    base = timings["predict (face + text)"]["median_ms"]
    rows = [
        {"request": k, "median_ms": v["median_ms"], "vs_predict": v["median_ms"] / base} for k, v in timings.items()
    ]
    print_table(rows, ["request", "median_ms", "vs_predict"])
    write_json(args.out, {"repeats": args.repeats, "rows": rows, "detail": timings})
    return {"rows": rows}


if __name__ == "__main__":
    main()
