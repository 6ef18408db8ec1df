"""How many Live-tab streams the app serves on this machine before a frame waits more than 500 ms.

    PYTHONPATH=. python bench/live_load.py [--streams 1 2 4 6 8 12] [--seconds 15] [--out runs/x.json]

Starts `app.py` (offline default) on 127.0.0.1 and drives its Live endpoint the way the tab does: each
stream sends a 640x480 webcam-like frame every 0.5 s (2 frames/s, `ui/live.STREAM_EVERY`) and, like the
browser, sends the next frame only once the previous answer came back. A frame's latency is from
sending to its answer. Bounded: loopback only, at most 32 streams, at most 60 s a level;
it stops at the first level where any frame waited longer than the limit.
"""

from __future__ import annotations

import argparse
import base64
import json
import queue
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import print_table, write_json
from bench.http_overhead import Server
from bench.serve import webcam_frame
from ui.live import STREAM_EVERY

MAX_STREAMS, MAX_SECONDS = 32, 60


def frame_data(image: str) -> dict:
    """The frame inline, as a data URL (what the browser's webcam stream sends)."""
    encoded = base64.b64encode(Path(image).read_bytes()).decode()
    return {"url": f"data:image/jpeg;base64,{encoded}", "meta": {"_type": "gradio.FileData"}}


def live_fn_index(url: str) -> int:
    config = httpx.get(url + "config", timeout=30).json()
    return next(i for i, dep in enumerate(config["dependencies"]) if dep.get("api_name") == "live")


class LiveStream:
    """One visitor's Live tab, over Gradio's streaming protocol: join the queue with the first frame, read
    the session's server-sent events, post each later frame to /stream/{event_id}, close at the end."""

    def __init__(self, url: str, fn_index: int, frame: dict, timeout: float = 60):
        self.http, self.timeout = httpx.Client(base_url=url, timeout=60), timeout
        self.body = {"fn_index": fn_index, "session_hash": uuid.uuid4().hex[:11], "event_data": None}
        self.frame, self.results = frame, queue.Queue()
        join = {**self.body, "data": self._data()}
        self.event_id = self.http.post("gradio_api/queue/join", json=join).json()["event_id"]
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        params = {"session_hash": self.body["session_hash"]}
        with self.http.stream("GET", "gradio_api/queue/data", params=params, timeout=None) as events:
            for line in events.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") in ("process_streaming", "process_generating", "process_completed"):
                    self.results.put(message)
                    if message["msg"] == "process_completed":
                        return

    def _data(self) -> list:
        """The Live tab's inputs as the browser sends them: the frame, Steady view on, the session's state."""
        return [self.frame, True, None]

    def first(self) -> None:
        self._answer()

    def send(self) -> None:
        self.http.post(f"gradio_api/stream/{self.event_id}", json={**self.body, "data": self._data()})
        self._answer()

    def _answer(self) -> None:
        message = self.results.get(timeout=self.timeout)
        if not message.get("success", True):
            raise RuntimeError(f"live frame failed: {message}")

    def close(self) -> None:
        self.http.post(f"gradio_api/stream/{self.event_id}/close")
        self.reader.join(timeout=10)
        self.http.close()


def level(url: str, fn_index: int, frame: dict, streams: int, seconds: float) -> dict:
    stop = time.monotonic() + seconds

    def stream(index: int) -> list[float]:
        time.sleep(index * STREAM_EVERY / streams)  # visitors do not start in step
        start = time.monotonic()
        live = LiveStream(url, fn_index, frame)
        latencies, next_send = [], time.monotonic()
        try:
            live.first()
            latencies.append((time.monotonic() - start) * 1000)
            next_send += STREAM_EVERY
            while next_send < stop:
                time.sleep(max(0.0, next_send - time.monotonic()))
                start = time.monotonic()
                live.send()
                latencies.append((time.monotonic() - start) * 1000)
                next_send = max(next_send + STREAM_EVERY, time.monotonic())  # a late answer delays the next frame
        finally:
            live.close()
        return latencies

    with ThreadPoolExecutor(streams) as pool:
        times = sorted(t for batch in pool.map(stream, range(streams)) for t in batch)
    return {"streams": streams, "frames": len(times), "frames_per_s": len(times) / seconds,
            "p50_ms": statistics.median(times), "p95_ms": times[int(round(0.95 * (len(times) - 1)))],
            "max_ms": times[-1]}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 6, 8, 12])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--limit-ms", type=float, default=500)
    parser.add_argument("--quantize", default="none", choices=["none", "int8"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    image = str(Path(tempfile.mkdtemp()) / "frame.jpg")
    webcam_frame().save(image, quality=90)
    rows, served, frame = [], 0, frame_data(image)
    with Server("--quantize", args.quantize) as server:
        fn_index = live_fn_index(server.url)
        level(server.url, fn_index, frame, 1, 2)  # warm
        for streams in sorted(set(min(s, MAX_STREAMS) for s in args.streams)):
            row = level(server.url, fn_index, frame, streams, min(args.seconds, MAX_SECONDS))
            rows.append(row)
            if row["max_ms"] > args.limit_ms:
                break
            served = streams
    print_table(rows, list(rows[0]))
    print(f"Streams served at 2 frames/s with every frame answered within {args.limit_ms:.0f} ms: {served}")
    summary = {"limit_ms": args.limit_ms, "streams_served": served, "rows": rows}
    write_json(args.out, summary)
    return summary


if __name__ == "__main__":
    main()
