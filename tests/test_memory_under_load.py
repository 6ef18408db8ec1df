"""Memory under load: minutes of a Space-like mixed load leave the app's memory flat (slow; CI runs it).

The app is started as `python app.py` starts it (the offline default model, warmed up, the same queue) in
this process, so that besides its resident memory (RSS) the test reads glibc's count of bytes in use
(`bench.common.heap_in_use_mb`), which C libraries' leaks show in at once: RSS shows a leak only once it
has used up the free memory the allocator holds anyway (here 40-80 MB, a few minutes of the leak below).
"""

from __future__ import annotations

import os

import pytest

from bench.common import heap_in_use_mb
from bench.soak import growth, proc_memory_mb, run_load, summarise

pytestmark = pytest.mark.slow

MINUTES = 5
# Bounds on the slope over the second half of the run. A leak seen before: 36 KB per face photo (yuface),
# 6.5 MB/min of heap on this 2-core machine shared with a training job, 20 MB/min on a quiet one, and the
# RSS of `python app.py` climbing ~35 MB/min. Without it the heap's slope is 0 +- 1 MB/min (requests in
# flight come and go). RSS: the issue asks for at most 40 MB over ten minutes (4 MB/min); over a 2.5-minute
# half, samples 5 s apart that swing by +-5 MB leave ~2 MB/min of doubt, hence twice that rate.
HEAP_MB_PER_MIN = 2.0
RSS_MB_PER_MIN = 8.0


def test_memory_stays_flat_under_mixed_load(tmp_path):
    import app
    from flags.store import FlagStore

    if heap_in_use_mb() is None:
        pytest.skip("needs glibc's mallinfo2 (glibc 2.33+) to read the heap")
    predictor, _ = app.load_predictor(None)
    demo = app.build_demo(predictor, FlagStore(tmp_path / "flags"), warm_up=True)
    demo.queue(default_concurrency_limit=2).launch(
        prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **app.LAUNCH_KWARGS
    )
    try:
        pid = os.getpid()
        result = run_load(demo.local_url, lambda: {**proc_memory_mb(pid), "heap_mb": heap_in_use_mb()},
                          minutes=MINUTES, callers=4, sample_every=5)  # fmt: skip
    finally:
        demo.close()
    total = summarise(result["records"])[-1]
    bad = sum(r["kind"] in ("no-face photo", "text file") for r in result["records"])
    assert total["other"] == 0 and total["clear"] == bad and total["answered"] == total["requests"] - bad
    heap, rss = growth(result["samples"], "heap_mb"), growth(result["samples"], "rss_mb")
    print(f"{total['requests']} requests; second half: heap {heap['slope_mb_per_min']:.2f} MB/min, "
          f"RSS {rss['slope_mb_per_min']:.2f} MB/min")  # fmt: skip
    assert heap["slope_mb_per_min"] < HEAP_MB_PER_MIN, f"bytes in use keep growing: {heap}"
    assert rss["slope_mb_per_min"] < RSS_MB_PER_MIN, f"resident memory keeps growing: {rss}"
