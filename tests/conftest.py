"""Shared fixtures. Tests run offline: nothing here may reach a network."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Cached example outputs go to a fresh folder, never to a stale one from another model.
os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp(prefix="gradio-examples-"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ASTRONAUT = ROOT / "examples" / "astronaut.jpg"  # a real, public-domain face photo
SHARED = ROOT.parent / "shared" / "data"  # real datasets beside the checkout (project machines and CI only)
needs_shared = pytest.mark.skipif(
    not (SHARED / "fer2013").is_dir() or not (SHARED / "goemotions").is_dir(),
    reason="../shared/data (FER2013, GoEmotions) is not beside this checkout; it exists on the project's machines and CI",
)


def tiny_model(**kwargs):
    """A small randomly initialised model: tiny BERT config + ResNet-18, deterministic."""
    from fusion.model import create_model

    torch.manual_seed(0)
    return create_model("bert-tiny-random", "resnet18", pretrained_image=False, **kwargs)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from fusion.encoders import packaged_minilm_path
    from fusion.preprocess import load_tokenizer
    from train.export import save_model_folder

    folder = tmp_path_factory.mktemp("tiny-model")
    return save_model_folder(tiny_model(), load_tokenizer(packaged_minilm_path()), folder)


@pytest.fixture(scope="session")
def predictor(tiny_model_dir):
    from fusion.predictor import EmotionPredictor

    return EmotionPredictor.load(tiny_model_dir, device="cpu")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_app(predictor, flag_dir, **kwargs) -> Iterator[str]:
    """The real app (`app.build_demo`) served on 127.0.0.1; yields its URL."""
    import app
    from flags.store import FlagStore

    demo = app.build_demo(predictor, FlagStore(flag_dir), **kwargs).queue()
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **app.LAUNCH_KWARGS)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def server(predictor, tmp_path_factory):
    with serve_app(predictor, tmp_path_factory.mktemp("flags"), review_secret="s3cret") as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def wait_for_app(url: str, process, log: Path, seconds: float = 240) -> None:
    """Poll a started `app.py` until `url` answers; fail with the tail of its log if it exits or never starts."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(1)
    raise AssertionError(f"the app at {url} did not start: " + log.read_text()[-3000:])


def rest_predict(base: str, data: list) -> tuple[int, str | None, object]:
    """The plain-HTTP route: POST /gradio_api/call/predict, then read the server-sent events.

    Returns (HTTP status of the call, last SSE event name or None, last SSE data parsed or the error body).
    """
    import httpx

    start = httpx.post(f"{base}gradio_api/call/predict", json={"data": data}, timeout=30)
    if start.status_code != 200:
        return start.status_code, None, start.text
    stream = httpx.get(f"{base}gradio_api/call/predict/{start.json()['event_id']}", timeout=60).text
    lines = stream.splitlines()
    event = [line for line in lines if line.startswith("event:")][-1].split(":", 1)[1].strip()
    payload = [line for line in lines if line.startswith("data:")][-1].split(":", 1)[1]
    try:
        return 200, event, json.loads(payload)
    except ValueError:
        return 200, event, payload


@pytest.fixture(scope="session")
def tokenizer():
    from fusion.encoders import packaged_minilm_path
    from fusion.preprocess import load_tokenizer

    return load_tokenizer(packaged_minilm_path())


from tests.hub_server import hub  # noqa: E402,F401 - the fake Hub fixture, for every test module


@pytest.fixture
def fresh_accelerate_state():
    """The recipe picks its own mixed precision (bf16 where the CPU has it); Accelerate keeps one per process."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)
