"""The real Gradio server and the real gradio_client."""

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from fusion.labels import EMOTIONS
from tests.conftest import ASTRONAUT


@pytest.fixture(scope="module")
def client(predictor):
    import app

    demo = app.build_demo(predictor).queue()
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", server_port=None)
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


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
