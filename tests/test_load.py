"""Load: 200 requests from 16 concurrent clients, valid and invalid mixed (slow; CI runs it)."""

import gc
import resource
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from fusion.labels import EMOTIONS
from tests.conftest import ASTRONAUT, serve_app

pytestmark = pytest.mark.slow


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def test_200_mixed_requests_from_16_clients(predictor, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    with serve_app(predictor, tmp_path / "flags") as url:
        clients = [Client(url, verbose=False) for _ in range(16)]
        requests = []
        for i in range(200):
            kind = ["image+text", "text", "image", "broken", "empty"][i % 5]
            requests.append((i, kind))

        def call(item):
            i, kind = item
            client = clients[i % 16]
            image = {"image+text": ASTRONAUT, "image": ASTRONAUT, "broken": broken}.get(kind)
            text = {"image+text": f"request {i} went well", "text": f"why is request {i} so slow"}.get(kind, "")
            try:
                details = client.predict(handle_file(str(image)) if image else None, text, api_name="/predict")[1]
                return kind, details
            except AppError as err:
                return kind, err

        client_ok = clients[0].predict(None, "warm up", api_name="/predict")[1]["label"] in EMOTIONS
        with ThreadPoolExecutor(16) as pool:  # a warm-up round: threads, arenas and caches reach steady state
            list(pool.map(call, requests[:64]))
        gc.collect()
        baseline = _rss_mb()
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(call, requests))
        gc.collect()
        after = _rss_mb()
    assert client_ok
    valid = [(k, r) for k, r in results if k in ("image+text", "text", "image")]
    invalid = [(k, r) for k, r in results if k in ("broken", "empty")]
    assert len(valid) == 120 and len(invalid) == 80
    assert all(isinstance(r, dict) and r["label"] in EMOTIONS for _, r in valid)  # every valid one answered
    assert all(isinstance(r, AppError) for _, r in invalid)
    assert all(("image" in k) == (r["image_probabilities"] is not None) for k, r in valid)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RSS baseline {baseline:.0f} MB, after {after:.0f} MB, peak {peak:.0f} MB")
    # Near the warmed-up baseline. The native allocator keeps some freed memory (Python-level growth
    # over 400 such requests measured with tracemalloc was ~3 MB), so allow 15%.
    assert after < baseline * 1.15
