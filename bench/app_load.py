"""The real app under load: N concurrent gradio_client callers, cross-request batching on vs off.

    PYTHONPATH=. python bench/app_load.py [--callers 1 4 8 16] [--requests 6] [--out runs/bench_app_load.json]

Serves the offline default model in-process (`demo.launch`), each caller sends image+text
requests through `gradio_client`. Also reports the bare predictor's time for the same request,
so the Gradio round trip at N=1 can be compared with it, and the CPU time per request of this
process (server and clients together: they share it). `bench/http_overhead.py` runs the server in
its own process and reports the server's CPU time alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp())

from gradio_client import Client, handle_file  # noqa: E402

import app  # noqa: E402
from bench.common import SHORT_TEXTS, print_table, time_calls, write_json  # noqa: E402
from bench.serve import webcam_frame  # noqa: E402
from flags.store import FlagStore  # noqa: E402
from fusion.hub import DEFAULT_MODEL  # noqa: E402
from fusion.predictor import EmotionPredictor  # noqa: E402


def load_run(url: str, callers: int, requests: int, image: str) -> dict:
    clients = [Client(url, verbose=False) for _ in range(callers)]

    def caller(index: int) -> list[float]:
        times = []
        for r in range(requests):
            start = time.perf_counter()
            clients[index].predict(handle_file(image), SHORT_TEXTS[(index + r) % len(SHORT_TEXTS)], api_name="/predict")
            times.append((time.perf_counter() - start) * 1000)
        return times

    caller(0)  # warm the connection
    start, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(callers) as pool:
        times = sorted(t for batch in pool.map(caller, range(callers)) for t in batch)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "cpu_ms_per_request": cpu * 1000 / len(times),
        "requests_per_s": len(times) / elapsed,
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(round(0.95 * (len(times) - 1)))],
        "requests": len(times),
    }


def rest_round_trip(url: str, image: str, repeats: int = 20) -> dict:
    """Plain HTTP (upload, call, read the server-sent events): the server's own overhead, without
    gradio_client, which polls its message queue every 50 ms."""
    import httpx

    with httpx.Client(base_url=url, timeout=60) as http:

        def call(i: int) -> None:
            with open(image, "rb") as handle:
                path = http.post("gradio_api/upload", files={"files": ("frame.jpg", handle, "image/jpeg")}).json()[0]
            payload = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, SHORT_TEXTS[i % 8]]}
            event = http.post("gradio_api/call/predict", json=payload).json()["event_id"]
            if "event: complete" not in http.get(f"gradio_api/call/predict/{event}").text:
                raise RuntimeError("request failed")

        return time_calls(call, repeats)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--requests", type=int, default=6, help="requests per caller")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    predictor = EmotionPredictor.load(DEFAULT_MODEL)
    predictor.warm_up()
    image = str(Path(tempfile.mkdtemp()) / "frame.jpg")
    webcam_frame().save(image, quality=90)
    bare = time_calls(lambda i: predictor.predict(image=image, text=SHORT_TEXTS[i % len(SHORT_TEXTS)]), 20)
    rows = []
    for batching in (True, False):
        demo = app.build_demo(predictor, FlagStore(tempfile.mkdtemp()), max_batch=8 if batching else 1).queue()
        demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **app.LAUNCH_KWARGS)
        try:
            if batching:
                rest = rest_round_trip(demo.local_url, image)
            for callers in args.callers:
                result = load_run(demo.local_url, callers, args.requests, image)
                rows.append({"batching": "on" if batching else "off", "callers": callers, **result})
        finally:
            demo.close()
    by = {(r["batching"], r["callers"]): r for r in rows}
    for row in rows:
        row["vs_batching_off"] = row["requests_per_s"] / by[("off", row["callers"])]["requests_per_s"]
    print(f"bare predictor (same request, in-process): median {bare['median_ms']:.1f} ms")
    print_table(
        rows, ["batching", "callers", "requests_per_s", "p50_ms", "p95_ms", "cpu_ms_per_request", "vs_batching_off"]
    )
    n1 = by[("on", 1)]["p50_ms"] / bare["median_ms"]
    rest_ratio = rest["median_ms"] / bare["median_ms"]
    print(
        f"Round trip at N=1: gradio_client {n1:.2f}x the bare predictor; plain HTTP {rest['median_ms']:.1f} ms = {rest_ratio:.2f}x"
    )
    summary = dict(bare_predictor=bare, rows=rows, round_trip_vs_bare_n1=n1, rest=rest, rest_vs_bare=rest_ratio)
    write_json(args.out, summary)
    return summary


if __name__ == "__main__":
    main()
