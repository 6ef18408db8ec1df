"""The real Gradio server, the real gradio_client and plain HTTP."""

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from fusion.faces import yunet_available
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
    assert details["detector"] == ("yunet" if yunet_available() else "haar")
    assert crop is not None


def test_text_only_and_image_only(client):
    _, details, crop = client.predict(None, "Leave me alone!", api_name="/predict")
    assert details["image_probabilities"] is None and crop is None and details["detector"] is None
    _, details, _ = client.predict(handle_file(str(ASTRONAUT)), "", api_name="/predict")
    assert details["text_probabilities"] is None and details["image_probabilities"] is not None


def test_neither_is_a_friendly_error(client):
    with pytest.raises(AppError, match="give a face image, a text, or both"):
        client.predict(None, "  ", api_name="/predict")
    # The server is still fine afterwards.
    assert client.predict(None, "ok then", api_name="/predict")[1]["label"] in EMOTIONS


def test_api_lists_predict_with_named_optional_parameters(client):
    endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/predict"]
    assert [p["parameter_name"] for p in endpoint["parameters"]] == ["image", "text"]
    assert all(p["parameter_has_default"] and p["parameter_default"] is None for p in endpoint["parameters"])


def test_keyword_calls_with_only_text_or_only_image(client):
    _, details, crop = client.predict(text="Leave me alone!", api_name="/predict")
    assert details["image_probabilities"] is None and crop is None and details["label"] in EMOTIONS
    _, details, _ = client.predict(image=handle_file(str(ASTRONAUT)), api_name="/predict")
    assert details["text_probabilities"] is None and details["face_found"] is True


def test_rest_call_with_only_the_text(server):
    _, event, data = rest_predict(server, [None, "only words here"])
    assert event == "complete" and data[1]["face_found"] is None


def test_no_face_abstains_from_a_face_emotion(client, tmp_path):
    from PIL import Image

    landscape = tmp_path / "landscape.png"
    Image.new("RGB", (640, 480), (40, 180, 60)).save(landscape)
    with pytest.raises(AppError, match="No face was found in the image. Try a photo"):
        client.predict(image=handle_file(str(landscape)), api_name="/predict")
    _, details, crop = client.predict(handle_file(str(landscape)), "I am so angry right now", api_name="/predict")
    text_only = client.predict(text="I am so angry right now", api_name="/predict")[1]
    assert details["face_found"] is False and details["image_probabilities"] is None and crop is None
    assert details["probabilities"] == text_only["probabilities"] and "No face found" in details["note"]


def test_face_crop_files_stay_bounded(predictor, tmp_path, monkeypatch):
    """Each different face writes a crop file; only the newest few are kept, and Gradio serves them in place."""
    from PIL import Image

    from tests.conftest import serve_app

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # this server's cache, nobody else's
    photo = Image.open(ASTRONAUT).convert("RGB")
    with serve_app(predictor, tmp_path / "flags", max_files=3) as url:
        client = Client(url, verbose=False)
        sizes = set()
        for i in range(6):  # six different faces: the photo at six sizes
            path = tmp_path / f"face{i}.jpg"
            photo.resize((photo.width - 20 * i, photo.height - 20 * i)).save(path)
            sizes.add(Image.open(client.predict(image=handle_file(str(path)), api_name="/predict")[2]).size)
        cache = tmp_path / "gradio"
        crops = list((cache / "emotion-files").glob("*.jpg"))
        copies = [p for p in cache.rglob("*.jpg") if p.parent.name != "emotion-files" and len(p.stem) == 32]
    assert len(sizes) > 3  # the crops really differ
    assert 1 <= len(crops) <= 3
    assert copies == []  # served from where they were written, not copied into Gradio's cache


def test_crop_files_keep_at_most_the_newest(tmp_path):
    import numpy as np
    from PIL import Image

    from ui.files import BoundedFiles

    rng = np.random.default_rng(0)
    faces = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(1000)]
    crops = BoundedFiles(tmp_path, keep=20)
    paths = [crops.write_jpeg(face) for face in faces]
    assert len(set(paths)) == 1000 and len(list(tmp_path.glob("*.jpg"))) == 20
    assert crops.write_jpeg(faces[-1]) == paths[-1]  # the same face is the same file


def test_the_footer_names_the_model_never_a_path(predictor):
    import app

    assert app.model_label(predictor).startswith("local model ")
    assert "/" not in app.model_label(predictor)


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
    """Batched together on the server, each caller still gets exactly the answer it gets alone."""
    texts = [f"message number {i} about my {'day week year'.split()[i % 3]}" * (1 + i % 4) for i in range(12)]
    alone = [client.predict(None, text, api_name="/predict")[1]["probabilities"] for text in texts]
    assert len({tuple(p.values()) for p in alone}) == 12  # distinct answers, so a mix-up would show
    texts += ["   "] * 4
    clients = [Client(server, verbose=False) for _ in range(4)]

    def call(i: int):
        try:
            return clients[i % 4].predict(None, texts[i], api_name="/predict")[1]["probabilities"]
        except AppError as err:
            return err

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(len(texts))))
    for got, expected in zip(results[:12], alone, strict=True):
        assert got == pytest.approx(expected, abs=1e-5)
    assert all(isinstance(r, AppError) for r in results[12:])


def test_live_streams_are_not_limited_to_two_visitors(server):
    """Gradio keeps a streaming event (and its concurrency slot) between frames: a third visitor's Live tab
    must still be answered while two others stream (bench/live_load.py speaks the browser's protocol)."""
    from bench.live_load import LiveStream, frame_data, live_fn_index

    fn_index, frame = live_fn_index(server), frame_data(str(ASTRONAUT))
    streams = [LiveStream(server, fn_index, frame, timeout=20) for _ in range(3)]
    try:
        for stream in streams:
            stream.first()
        for stream in streams:
            stream.send()
    finally:
        for stream in streams:
            stream.close()
