"""The Space bundle: complete by construction, and it starts from its own files with no network."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from fusion.labels import EMOTIONS
from space_config.bundle import walk
from space_config.deploy import space_requirements, stage
from tests.conftest import ASTRONAUT, ROOT, free_port, rest_predict, wait_for_app


def _pins(text: str) -> dict[str, str]:
    return {line.split("==")[0].lower(): line.split("==")[1] for line in text.splitlines() if "==" in line}


def test_space_requirements_pin_what_the_bundle_imports_with_cpu_torch():
    generated = space_requirements()
    assert generated.splitlines()[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    space, project = _pins(generated), _pins((ROOT / "requirements.txt").read_text())
    assert space["torch"] == project["torch"] + "+cpu" and space["torchvision"] == project["torchvision"] + "+cpu"
    assert all(project[name] == version for name, version in space.items() if name not in ("torch", "torchvision"))
    sources, third_party = walk()
    assert {"gradio", "torch", "transformers", "cv2"} <= third_party
    assert not any(p.relative_to(ROOT).parts[0] in ("train", "tests", "bench", "tools") for p in sources)


def test_the_staged_bundle_starts_from_its_own_files_offline(tmp_path):
    """Only the staged files, no project checkout on the path, the Hub unreachable: the default is served."""
    folder = tmp_path / "space"
    folder.mkdir()
    files = stage(folder, "tester/demo", model="tester/emotion", flag_dataset=None)
    assert "fusion/assets/fer_mini_xception.safetensors" in files and "requirements.txt" in files
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HF_", "GRADIO_", "EMOTION_"))}
    env |= {
        "HF_HUB_OFFLINE": "1",  # the Hub is down: the configured model cannot load
        "HF_HOME": str(tmp_path / "hf-home"),  # and nothing is cached
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "EMOTION_MODEL": "tester/emotion",
    }
    log = (tmp_path / "app.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-s", "app.py", "--port", str(port)], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_app(url, process, tmp_path / "app.log")
        _, event, data = rest_predict(url, [None, "We won the final, I can't stop smiling!"])
        assert event == "complete" and data[1]["label"] in EMOTIONS
        uploaded = httpx.post(f"{url}gradio_api/upload", files={"files": ("face.jpg", ASTRONAUT.read_bytes())}).json()
        _, event, data = rest_predict(url, [{"path": uploaded[0], "meta": {"_type": "gradio.FileData"}}, None])
        assert event == "complete" and data[1]["face_found"] is True
        page = httpx.get(url).text
        assert "offline default" in page and "could not be loaded" in page  # the fallback says so
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert (folder / "fusion" / "assets" / "default" / "model.safetensors").is_file()  # the bundle carries the default
    assert not (folder / "models").exists()  # nothing is built on first start
