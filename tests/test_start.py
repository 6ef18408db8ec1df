"""The first command a newcomer runs: `./dev.sh app` starts the app without a warning or a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, free_port, rest_predict, wait_for_app


def test_a_clean_start_prints_no_warning(tmp_path):
    port, log = free_port(), tmp_path / "app.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "EMOTION_"))}
    env |= {"PYTHONPATH": ".", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
            "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_EXAMPLES_CACHE": str(tmp_path / "examples-cache")}  # fmt: skip
    with log.open("w") as out:  # what `./dev.sh app` runs once its .venv is set up
        process = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--flag-dir", str(tmp_path / "flags")],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_app(url, process, log)
        _, event, _ = rest_predict(url, [None, "We won the final, I can't stop smiling!"])
        assert event == "complete"
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = log.read_text()
    assert "Running on local URL" in text
    assert "Warning" not in text and "Traceback" not in text, text[-3000:]
