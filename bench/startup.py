"""Start-up and memory of the real app: `python app.py` -> first answered request, and peak RSS.

    PYTHONPATH=. python bench/startup.py [--requests 20] [--out runs/bench_startup.json]

Starts the app as a user would (offline default model), waits for its first answer through
`gradio_client`, then serves more requests and reads the server process's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import SHORT_TEXTS, print_table, write_json

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status_mb(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as handle:
        return int(next(line for line in handle if line.startswith(key)).split()[1]) / 1024


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT),
           "GRADIO_EXAMPLES_CACHE": tempfile.mkdtemp()}  # fmt: skip
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--flag-dir", tempfile.mkdtemp()],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        from gradio_client import Client, handle_file

        client = None
        while client is None:
            if server.poll() is not None:
                raise SystemExit("the app exited during start-up")
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.2)
        listening = time.perf_counter() - started
        first_start = time.perf_counter()
        client.predict(handle_file(str(ROOT / "examples" / "astronaut.jpg")), SHORT_TEXTS[0], api_name="/predict")
        first_request = time.perf_counter() - first_start
        first_answer = time.perf_counter() - started
        times = []
        for i in range(args.requests):
            t = time.perf_counter()
            client.predict(
                handle_file(str(ROOT / "examples" / "astronaut.jpg")), SHORT_TEXTS[i % 8], api_name="/predict"
            )
            times.append(time.perf_counter() - t)
        later = sorted(times)[len(times) // 2]
        rss, peak = _status_mb(server.pid, "VmRSS"), _status_mb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)
    row = {
        "start_to_listening_s": listening,
        "start_to_first_answer_s": first_answer,
        "first_request_ms": first_request * 1000,
        "later_request_median_ms": later * 1000,
        "first_vs_later": first_request / later,
        "rss_mb": rss,
        "peak_rss_mb": peak,
    }
    print_table([row], list(row))
    write_json(args.out, row)
    return row


if __name__ == "__main__":
    main()
