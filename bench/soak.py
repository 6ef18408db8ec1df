"""Does the server's memory stay flat under a Space-like load? RSS over time, answers, errors, latency.

    PYTHONPATH=. python bench/soak.py [--minutes 20] [--callers 4] [--sample-every 30] [--env K=V ...]
                                      [--out runs/soak.json]

Starts `app.py` (offline default) in a subprocess on 127.0.0.1 and drives /predict with N gradio_client
callers, each sending its next request when the last one is answered, in this mix: 40% face + text,
25% text only, 25% face only, 10% bad files (half a photo with no face, half a text file named .jpg).
Faces: the example photo (320 px), a 640x480 webcam-like frame with it, and a 48x48 grey crop of the
face (FER2013-sized); texts: the project's held-out sentences (varied lengths); the no-face photo is a
generated landscape. Every `--sample-every` seconds the server's resident memory (VmRSS, and its
anonymous part) is read from /proc. Bad files must get the app's own message for them ("clear");
anything else that fails is an "other" error. Growth is judged on the second half of the run (start-up,
warm-up and Gradio's lazily built state come first): its slope (least squares, MB/min) and its rise.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from bench.common import print_table, write_json
from bench.http_overhead import Server
from bench.serve import webcam_frame
from fusion.predictor import NO_FACE_MESSAGE
from ui.image_input import UNREADABLE

ROOT = Path(__file__).resolve().parent.parent
MIX = {"face+text": 0.40, "text": 0.25, "face": 0.25, "bad": 0.10}
CLEAR = {"no-face photo": NO_FACE_MESSAGE, "text file": UNREADABLE}  # bad input -> the app's message for it
TIMEOUT_S = 120


def landscape(width: int = 800, height: int = 533, seed: int = 0) -> Image.Image:
    """A photo-like scene with no face in it: sky, hills, grass texture."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height)[:, None, None]
    sky = (1 - y) * np.array([110, 160, 230]) + y * np.array([200, 220, 240])
    x = np.arange(width)
    ridge = 0.55 * height + 40 * np.sin(x / 90) + 25 * np.sin(x / 37 + 1)
    below = np.arange(height)[:, None] > ridge[None, :]
    grass = np.array([60, 120, 50]) + rng.normal(0, 18, (height, width, 3))
    picture = np.where(below[..., None], grass, sky + rng.normal(0, 3, (height, width, 3)))
    return Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8))


def soak_inputs(folder: Path) -> dict[str, Any]:
    """The files and texts the callers send, written into `folder`."""
    photo = ROOT / "examples" / "astronaut.jpg"
    frame, crop = folder / "webcam.jpg", folder / "crop48.png"
    webcam_frame().save(frame, quality=90)
    Image.open(photo).convert("L").crop((100, 40, 250, 190)).resize((48, 48)).save(crop)
    no_face, text_file = folder / "landscape.jpg", folder / "notes.jpg"
    landscape().save(no_face, quality=90)
    text_file.write_text("This is a text file, not a picture.\n" * 20)
    with open(ROOT / "train" / "sentences" / "heldout.csv", newline="", encoding="utf-8") as handle:
        sentences = [row["text"] for row in csv.DictReader(handle)]
    return {"faces": [str(photo), str(frame), str(crop)], "sentences": sentences,
            "bad": {"no-face photo": str(no_face), "text file": str(text_file)}}  # fmt: skip


def proc_memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of a process (VmRSS) and its anonymous part (heap, arenas; not mapped files)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss_mb": fields["VmRSS"], "anon_mb": fields["RssAnon"]}


def growth(samples: list[dict[str, float]], key: str = "rss_mb") -> dict[str, float]:
    """Over the second half of the run: the least-squares slope (MB/min), the growth it fits over that half,
    and the mean of its last minute minus the mean of its first (single samples swing with what is in flight)."""
    end = samples[-1]["minute"]
    half = [s for s in samples if s["minute"] >= end / 2]
    minutes, values = [s["minute"] for s in half], [s[key] for s in half]
    slope = statistics.linear_regression(minutes, values).slope if len(half) >= 2 else float("nan")
    first = [v for m, v in zip(minutes, values) if m < minutes[0] + 1]
    last = [v for m, v in zip(minutes, values) if m > minutes[-1] - 1]
    return {"from_minute": minutes[0], "to_minute": minutes[-1], "slope_mb_per_min": slope,
            "fitted_growth_mb": slope * (minutes[-1] - minutes[0]),
            "minute_means_growth_mb": statistics.fmean(last) - statistics.fmean(first)}  # fmt: skip


def by_minute(samples: list[dict[str, float]]) -> list[dict[str, float]]:
    """One row per minute of the run: requests answered by its end, mean / lowest / highest RSS, mean anonymous."""
    rows = []
    for minute in range(math.ceil(samples[-1]["minute"] - 0.05)):  # the final sample comes a moment after the end
        mine = [s for s in samples if minute <= s["minute"] < minute + 1] or [samples[-1]]
        rss = [s["rss_mb"] for s in mine]
        rows.append({"minute": f"{minute}-{minute + 1}", "requests": mine[-1]["requests"],
                     "rss_mb": statistics.fmean(rss), "lowest": min(rss), "highest": max(rss),
                     "anon_mb": statistics.fmean(s["anon_mb"] for s in mine)})  # fmt: skip
    return rows


def one_request(client: Client, rng: random.Random, inputs: dict[str, Any], kind: str | None = None) -> dict[str, Any]:
    """Send one request of the mix (or of `kind`); return its kind, latency and outcome (answered, clear or other)."""
    kind = kind or rng.choices(list(MIX), weights=list(MIX.values()))[0]
    image, text, expected = None, None, None
    if kind in ("face+text", "face"):
        image = rng.choice(inputs["faces"])
    if kind in ("face+text", "text"):
        text = rng.choice(inputs["sentences"])
    if kind == "bad":
        kind = rng.choice(list(CLEAR))
        image, expected = inputs["bad"][kind], CLEAR[kind]
    start = time.perf_counter()
    try:
        job = client.submit(handle_file(image) if image else None, text or "", api_name="/predict")
        details = job.result(timeout=TIMEOUT_S)[1]
        outcome, error = ("answered", None) if expected is None and "label" in details else ("other", "no error")
    except AppError as err:
        outcome, error = ("clear" if str(err) == expected else "other"), str(err)
    except Exception as err:  # noqa: BLE001 - any other failure is what this counts
        outcome, error = "other", f"{type(err).__name__}: {err}"
    return {"kind": kind, "latency_s": time.perf_counter() - start, "outcome": outcome, "error": error}


def run_load(
    url: str, sample: Callable[[], dict[str, float]], minutes: float, callers: int, sample_every: float, seed: int = 0
) -> dict[str, Any]:
    """Drive the server at `url` for `minutes`, calling `sample()` (the server's memory) every `sample_every` s."""
    inputs = soak_inputs(Path(tempfile.mkdtemp(prefix="soak-")))
    clients = [Client(url, verbose=False) for _ in range(callers)]
    for client in clients:  # warm-up, not counted: each kind once per caller
        for kind in MIX:
            one_request(client, random.Random(seed), inputs, kind)
    records: list[dict[str, Any]] = []
    start = time.monotonic()
    stop = start + minutes * 60

    def caller(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        while time.monotonic() < stop:
            records.append({**one_request(clients[index], rng, inputs), "at_s": time.monotonic() - start})

    samples = []
    with ThreadPoolExecutor(callers) as pool:
        futures = [pool.submit(caller, i) for i in range(callers)]
        while True:
            now = time.monotonic()
            samples.append({"minute": (now - start) / 60, "requests": len(records), **sample()})
            if now >= stop:
                break
            time.sleep(min(sample_every, max(0.0, stop - now)))
        for future in futures:
            future.result()
    samples.append({"minute": (time.monotonic() - start) / 60, "requests": len(records), **sample()})
    return {"samples": samples, "records": records}


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per kind and overall: requests, answered, clear errors, other errors, p50/p95 latency."""
    rows = []
    for kind in [*sorted({r["kind"] for r in records}), "all"]:
        mine = [r for r in records if kind in ("all", r["kind"])]
        times = sorted(r["latency_s"] for r in mine)
        counts = {o: sum(r["outcome"] == o for r in mine) for o in ("answered", "clear", "other")}
        rows.append({"kind": kind, "requests": len(mine), **counts, "p50_s": statistics.median(times),
                     "p95_s": times[int(round(0.95 * (len(times) - 1)))]})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--sample-every", type=float, default=30, help="seconds between memory samples")
    parser.add_argument("--env", nargs="*", default=[], metavar="K=V", help="extra environment for the app")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", type=Path, default=None, help="write the app's output here")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    with Server(env=env, log=args.log) as server:
        started = proc_memory_mb(server.process.pid)
        pid = server.process.pid
        result = run_load(
            server.url, lambda: proc_memory_mb(pid), args.minutes, args.callers, args.sample_every, args.seed
        )
    samples, rows = result["samples"], summarise(result["records"])
    print(f"Server memory after start-up: RSS {started['rss_mb']:.0f} MB (anonymous {started['anon_mb']:.0f} MB)")
    print_table(by_minute(samples), ["minute", "requests", "rss_mb", "lowest", "highest", "anon_mb"])
    print_table(rows, ["kind", "requests", "answered", "clear", "other", "p50_s", "p95_s"])
    rise = growth(samples)
    print(f"RSS over the second half (minutes {rise['from_minute']:.1f}-{rise['to_minute']:.1f}): "
          f"slope {rise['slope_mb_per_min']:.2f} MB/min, fitted growth {rise['fitted_growth_mb']:.0f} MB, "
          f"last minute's mean - first minute's {rise['minute_means_growth_mb']:.0f} MB")  # fmt: skip
    others = sorted({r["error"] for r in result["records"] if r["outcome"] == "other"})
    for error in others[:10]:
        print(f"other error: {error}")
    summary = {"minutes": args.minutes, "callers": args.callers, "env": env, "mix": MIX, "start": started,
               "samples": samples, "rows": rows, "second_half": rise, "other_errors": others}  # fmt: skip
    write_json(args.out, summary)
    return summary


if __name__ == "__main__":
    main()
