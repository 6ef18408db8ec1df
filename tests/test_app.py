"""The real Gradio server, the real gradio_client and plain HTTP."""

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from fusion.labels import EMOTIONS
from tests.conftest import ASTRONAUT, rest_predict


def _confidences(label_output: dict) -> dict[str, float]:
    return {c["label"]: c["confidence"] for c in label_output["confidences"]}


def test_image_and_text(client):
    label, details, crop = client.predict(handle_file(str(ASTRONAUT)), "I feel great", api_name="/predict")
    confidences = _confidences(label)
    assert set(confidences) == set(EMOTIONS) and sum(confidences.values()) == pytest.approx(1, abs=1e-4)
    assert label["label"] == details["label"] == max(confidences, key=confidences.get)
    assert details["face_found"] is True and details["text_probabilities"] is not None
    assert crop is not None


def test_text_only_and_image_only(client):
    _, details, crop = client.predict(None, "Leave me alone!", api_name="/predict")
    assert details["image_probabilities"] is None and crop is None
    _, details, _ = client.predict(handle_file(str(ASTRONAUT)), "", api_name="/predict")
    assert details["text_probabilities"] is None and details["image_probabilities"] is not None


def test_neither_is_a_friendly_error(client):
    with pytest.raises(AppError, match="give a face image, a text, or both"):
        client.predict(None, "  ", api_name="/predict")
    # The server is still fine afterwards.
    assert client.predict(None, "ok then", api_name="/predict")[1]["label"] in EMOTIONS


def test_api_lists_predict_with_named_parameters(client):
    endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/predict"]
    assert [p["parameter_name"] for p in endpoint["parameters"]] == ["image", "text"]


def test_api_hides_private_endpoints(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert list(endpoints) == ["/predict"]  # flagging, review and live endpoints are not public


def test_rest_route_with_upload(server):
    with ASTRONAUT.open("rb") as handle:
        uploaded = httpx.post(f"{server}gradio_api/upload", files={"files": ("face.jpg", handle, "image/jpeg")})
    uploaded.raise_for_status()
    path = uploaded.json()[0]
    _, event, data = rest_predict(server, [{"path": path, "meta": {"_type": "gradio.FileData"}}, "so happy"])
    assert event == "complete" and data[1]["face_found"] is True and data[1]["label"] in EMOTIONS


def test_rest_route_with_base64_data_url(server):
    url = "data:image/jpeg;base64," + base64.b64encode(ASTRONAUT.read_bytes()).decode()
    _, event, data = rest_predict(server, [{"url": url, "meta": {"_type": "gradio.FileData"}}, ""])
    assert event == "complete" and data[1]["image_probabilities"] is not None


def test_rest_route_reports_errors(server):
    _, event, data = rest_predict(server, [None, ""])
    assert event == "error"
    assert "give a face image, a text, or both" in json.dumps(data)


def test_too_long_text_is_refused_with_the_limit(client):
    import app

    with pytest.raises(AppError, match=f"the limit is {app.MAX_TEXT_CHARS}"):
        client.predict(None, "a" * (app.MAX_TEXT_CHARS + 1), api_name="/predict")


def test_concurrent_callers_each_get_their_own_answer(client, server):
    texts = [f"message number {i} about my day" for i in range(12)] + ["   "] * 4
    clients = [Client(server, verbose=False) for _ in range(4)]

    def call(i: int):
        try:
            return clients[i % 4].predict(None, texts[i], api_name="/predict")[1]["label"]
        except AppError as err:
            return err

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(len(texts))))
    assert all(r in EMOTIONS for r in results[:12])
    assert all(isinstance(r, AppError) for r in results[12:])
