"""Memory under load: minutes of a Space-like mixed load leave the app's memory flat (slow; CI runs it).

`python app.py` is started as a Space starts it (the offline default model, warmed up, its own process) and
driven by four `gradio_client` callers in the mix of `bench/soak.py`; the server's resident memory (RSS) is
read from /proc. The callers run in this process, so their own buffers never count as the server's.
"""

from __future__ import annotations

import pytest

from bench.http_overhead import Server
from bench.soak import growth, proc_memory_mb, run_load, summarise

pytestmark = pytest.mark.slow

MINUTES = 8  # the second half (minutes 4-8) is past start-up settling
# A bound on RSS's slope over the second half of the run. The leak this guards against (yuface's 36 KB per face
# photo) grew the server's RSS by 24.5 MB/min over the second half of a 5-minute run on this 2-core machine
# (35 MB/min over ten minutes); without it, 3.5 MB/min in the same window (still settling after start-up) and
# -0.3 MB/min over the second half of 20 minutes (docs/performance.md). The issue allows 40 MB per ten minutes.
RSS_MB_PER_MIN = 8.0


def test_memory_stays_flat_under_mixed_load():
    with Server() as server:
        pid = server.process.pid
        result = run_load(server.url, lambda: proc_memory_mb(pid), minutes=MINUTES, callers=4, sample_every=5)
    total = summarise(result["records"])[-1]
    bad = sum(r["kind"] in ("no-face photo", "text file") for r in result["records"])
    assert total["other"] == 0 and total["clear"] == bad and total["answered"] == total["requests"] - bad
    rss = growth(result["samples"], "rss_mb")
    print(f"{total['requests']} requests; RSS over the second half: {rss['slope_mb_per_min']:.2f} MB/min")
    assert rss["slope_mb_per_min"] < RSS_MB_PER_MIN, f"resident memory keeps growing: {rss}"
