"""Where a plain-HTTP request's time goes, and what concurrent plain-HTTP callers get.

    PYTHONPATH=. python bench/http_overhead.py [--repeats 30] [--callers 1 8] [--quantize none] [--out runs/x.json]

Starts `app.py` (offline default) in a subprocess on 127.0.0.1, then, against it:
- the bare predictor on the same request (in this process, same threads as the server);
- one plain-HTTP caller, timed per phase: upload (POST /gradio_api/upload), call (POST .../call/predict,
  returns an event id) and result (GET the server-sent events until `complete`);
- the server's CPU time per request (its /proc stat: user + system, all threads), so the client's
  share of the 2 cores is not counted against the server;
- N concurrent plain-HTTP callers: requests/s vs one caller's.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402

from bench.common import SHORT_TEXTS, print_table, time_calls, write_json  # noqa: E402
from bench.serve import webcam_frame  # noqa: E402
from fusion.hub import DEFAULT_MODEL  # noqa: E402
from fusion.predictor import EmotionPredictor  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Server:
    """`python app.py` on a free loopback port, stopped on exit; `env` adds to this process's environment,
    `log` receives the app's output (discarded without it)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, log: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_SERVER_NAME": "127.0.0.1", **(env or {})}
        self.flags = tempfile.mkdtemp()
        command = [sys.executable, "app.py", "--port", str(self.port), "--flag-dir", self.flags, *args]
        output = open(log, "wb") if log else None  # the child keeps its own copy of the handle
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output or subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        if output:
            output.close()

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("app.py exited during start-up")
            try:
                if httpx.get(self.url + "gradio_api/info", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.__exit__()  # not left running behind the error
        raise TimeoutError("app.py did not start within 180 s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def plain_http_call(http: httpx.Client, image: str, text: str, phases: dict[str, list[float]] | None = None) -> None:
    """One /predict over plain HTTP: upload, call, read the server-sent events."""
    marks = [time.perf_counter()]
    with open(image, "rb") as handle:
        path = http.post("gradio_api/upload", files={"files": ("frame.jpg", handle, "image/jpeg")}).json()[0]
    marks.append(time.perf_counter())
    payload = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, text]}
    event = http.post("gradio_api/call/predict", json=payload).json()["event_id"]
    marks.append(time.perf_counter())
    if "event: complete" not in http.get(f"gradio_api/call/predict/{event}").text:
        raise RuntimeError("request failed")
    marks.append(time.perf_counter())
    if phases is not None:
        for name, start, end in zip(("upload", "call", "result"), marks, marks[1:]):
            phases[name].append((end - start) * 1000)


def one_caller(server: Server, image: str, repeats: int) -> dict:
    phases: dict[str, list[float]] = {"upload": [], "call": [], "result": []}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for i in range(3):
            plain_http_call(http, image, SHORT_TEXTS[i])
        cpu = cpu_seconds(server.process.pid)
        total = time_calls(lambda i: plain_http_call(http, image, SHORT_TEXTS[i % 8], phases), repeats, warmup=0)
        cpu = cpu_seconds(server.process.pid) - cpu
    return {"total": total, "server_cpu_ms": cpu * 1000 / repeats,
            "phases_ms": {k: statistics.median(v) for k, v in phases.items()}}  # fmt: skip


def concurrent(server: Server, image: str, callers: int, requests: int) -> dict:
    def caller(index: int) -> list[float]:
        times = []
        with httpx.Client(base_url=server.url, timeout=120) as http:
            for r in range(requests):
                start = time.perf_counter()
                plain_http_call(http, image, SHORT_TEXTS[(index + r) % 8])
                times.append((time.perf_counter() - start) * 1000)
        return times

    cpu, start = cpu_seconds(server.process.pid), time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        times = sorted(t for batch in pool.map(caller, range(callers)) for t in batch)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds(server.process.pid) - cpu
    return {"callers": callers, "requests": len(times), "requests_per_s": len(times) / elapsed,
            "p50_ms": statistics.median(times), "server_cpu_ms_per_request": cpu * 1000 / len(times)}  # fmt: skip


def bare_predictor(image: str, quantize: str, repeats: int) -> dict:
    """The same request straight to `EmotionPredictor` in this process: wall and CPU time."""
    predictor = EmotionPredictor.load(DEFAULT_MODEL, quantize=quantize)
    predictor.warm_up()
    cpu = time.process_time()
    timing = time_calls(lambda i: predictor.predict(image=image, text=SHORT_TEXTS[i % 8]), repeats, warmup=0)
    return {**timing, "cpu_ms": (time.process_time() - cpu) * 1000 / repeats}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--requests", type=int, default=8, help="requests per concurrent caller")
    parser.add_argument("--quantize", default="none", choices=["none", "int8"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    image = str(Path(tempfile.mkdtemp()) / "frame.jpg")
    webcam_frame().save(image, quality=90)
    bare = bare_predictor(image, args.quantize, args.repeats)
    with Server("--quantize", args.quantize) as server:
        single = one_caller(server, image, args.repeats)
        rows = [concurrent(server, image, n, args.requests) for n in args.callers]
    for row in rows:
        row["vs_one_caller"] = row["requests_per_s"] / rows[0]["requests_per_s"]
    ratio = single["total"]["median_ms"] / bare["median_ms"]
    phases = ", ".join(f"{k} {v:.1f}" for k, v in single["phases_ms"].items())
    print(f"bare predictor {bare['median_ms']:.1f} ms ({bare['cpu_ms']:.1f} ms CPU); plain HTTP {single['total']['median_ms']:.1f} ms = {ratio:.2f}x "
          f"(median phases, ms: {phases}); server CPU {single['server_cpu_ms']:.1f} ms per request")  # fmt: skip
    print_table(rows, ["callers", "requests", "requests_per_s", "p50_ms", "server_cpu_ms_per_request", "vs_one_caller"])
    summary = {"bare": bare, "plain_http": single, "plain_http_vs_bare": ratio, "concurrent": rows}
    write_json(args.out, summary)
    return summary


if __name__ == "__main__":
    main()
