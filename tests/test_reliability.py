"""Bad input, crashes mid-flag, Hub faults and secrets: the server stays up and nothing leaks or is lost."""

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from flags.store import FlagStore
from fusion.labels import EMOTIONS
from tests.conftest import ASTRONAUT, ROOT, rest_predict


def _save(image: Image.Image, path, fmt=None, **kwargs):
    image.save(path, format=fmt, **kwargs)
    return path


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _gif(path):
    frames = [Image.new("P", (40, 40), i * 40) for i in range(3)]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def _odd_exif(path):
    exif = Image.Exif()
    exif[0x0112] = 99
    exif[0x010F] = "\x00\xff weird maker"
    return _save(Image.open(ASTRONAUT), path, "JPEG", exif=exif.tobytes())


# (id, builder of an image file or None, text, expected: "ok" or a fragment of the error message)
CASES = [
    ("corrupt-jpeg", lambda p: _write(p, b"\xff\xd8\xff\xe0garbage" * 10), "hi", "could not be read"),
    ("truncated-png", lambda p: _write(p, ASTRONAUT.read_bytes()[:500]), "", "could not be read"),
    ("zero-bytes", lambda p: _write(p, b""), "hello", "could not be read"),
    ("text-as-png", lambda p: _write(p, b"I am not a picture"), "", "could not be read"),
    ("bomb", lambda p: _save(Image.new("L", (9000, 9000)), p, "PNG"), "", "megapixel"),
    # Images with no face need a text to be answered (image alone: "No face was found", below).
    ("16-bit", lambda p: _save(Image.new("I;16", (64, 48), 40000), p, "PNG"), "hi", "ok"),
    ("cmyk", lambda p: _save(Image.new("CMYK", (64, 48), (0, 80, 160, 0)), p, "JPEG"), "hi", "ok"),
    ("palette", lambda p: _save(Image.open(ASTRONAUT).convert("P"), p, "PNG"), "", "ok"),
    ("rgba", lambda p: _save(Image.open(ASTRONAUT).convert("RGBA"), p, "PNG"), "", "ok"),
    ("la", lambda p: _save(Image.open(ASTRONAUT).convert("LA"), p, "PNG"), "", "ok"),
    ("animated-gif", _gif, "", "ok"),
    ("1x1", lambda p: _save(Image.new("RGB", (1, 1), "red"), p, "PNG"), "hi", "ok"),
    ("huge-valid", lambda p: _save(Image.new("RGB", (4000, 3000), (90, 90, 90)), p, "JPEG"), "hi", "ok"),
    ("no-face-alone", lambda p: _save(Image.new("RGB", (640, 480), (40, 180, 60)), p, "PNG"), "", "No face was found"),
    ("tiny-alone", lambda p: _save(Image.new("RGB", (8, 8), "red"), p, "PNG"), "", "No face was found"),
    ("odd-exif", _odd_exif, "", "ok"),
    ("webp", lambda p: _save(Image.open(ASTRONAUT), p, "WEBP"), "", "ok"),
    ("bmp", lambda p: _save(Image.open(ASTRONAUT), p, "BMP"), "", "ok"),
    ("valid-image-empty-text", lambda p: _save(Image.open(ASTRONAUT), p, "JPEG"), "", "ok"),
    ("whitespace-text-only", None, "   \n\t  ", "give a face image, a text, or both"),
    ("empty-text-only", None, "", "give a face image, a text, or both"),
    ("too-long-text", None, "x" * 10_000_000, "the limit is 2000"),
    ("control-characters", None, "hello\x00\x07\x1b[31m world\r\n", "ok"),
    ("emoji", None, "😡😡😡 why would you do that 🤬", "ok"),
    ("rtl", None, "أنا سعيد جدا اليوم", "ok"),
    ("cjk", None, "今日はとても悲しいです", "ok"),
    ("mixed-scripts", None, "Привет! 你好! 🙂 שלום", "ok"),
    ("only-punctuation", None, "?!?!...", "ok"),
    ("number-like-text", None, "12345", "ok"),
    ("long-but-allowed", None, "word " * 399, "ok"),
]


def _ok_afterwards(client):
    assert client.predict(None, "still alive?", api_name="/predict")[1]["label"] in EMOTIONS


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_matrix_through_the_client(case, client, tmp_path):
    name, build, text, expected = case
    image = handle_file(str(build(tmp_path / f"{name}.png"))) if build else None
    if expected == "ok":
        _, details, _ = client.predict(image, text, api_name="/predict")
        assert details["label"] in EMOTIONS
        assert sum(details["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    else:
        with pytest.raises(AppError) as err:
            client.predict(image, text, api_name="/predict")
        assert expected in str(err.value)
        assert "Traceback" not in str(err.value)
    _ok_afterwards(client)


@pytest.mark.parametrize("case", CASES[:14], ids=[c[0] for c in CASES[:14]])
def test_bad_images_through_the_predictor(case, predictor, tmp_path):
    name, build, text, expected = case
    path = build(tmp_path / f"{name}.png")
    if expected == "ok":
        assert predictor.predict(image=path, text=text).label in EMOTIONS
    else:
        with pytest.raises(ValueError, match=expected):
            predictor.predict(image=path, text=text)


@pytest.mark.parametrize(
    "data",
    [
        [None, 42],  # a number as text
        ["just a string, not an image", "hi"],  # text as image
        [{"url": "data:image/png;base64,!!!notbase64", "meta": {"_type": "gradio.FileData"}}, ""],
        [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, "hi"],  # escaping the upload folder
        [None],  # too few values
        [None, None, None],  # too many values
    ],
    ids=["number-as-text", "text-as-image", "bad-data-url", "abs-path", "too-few", "too-many"],
)
def test_wrong_types_over_rest_never_crash_or_escape(data, server, client):
    status, event, body = rest_predict(server, data)
    assert "root:x:0" not in json.dumps(body)  # /etc/passwd content never comes back
    if status != 200:
        assert 400 <= status < 500
    elif event == "complete":  # accepted only when Gradio coerced it into a valid request
        assert body[1]["label"] in EMOTIONS
    else:
        assert event == "error"
    _ok_afterwards(client)


def test_a_real_photo_outside_the_upload_folder_is_refused(server, client, tmp_path):
    """A readable photo (so "not an image" cannot be why) named by absolute path or by ../ from the server's
    folder: the server must not open it."""
    import shutil

    photo = shutil.copy(ASTRONAUT, tmp_path / "outside.jpg")
    relative = os.path.relpath(photo, ROOT)  # the server runs in the repo: ../../tmp/... from there
    assert relative.startswith("..")
    for path in (str(photo), relative):
        status, event, body = rest_predict(server, [{"path": path, "meta": {"_type": "gradio.FileData"}}, ""])
        assert status >= 400 or event == "error", (path, body)
        assert "face_found" not in json.dumps(body)
    _ok_afterwards(client)


def test_upload_over_the_size_limit_is_refused(server, client, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + os.urandom(11 * 1024 * 1024))
    with big.open("rb") as handle:
        answer = httpx.post(f"{server}gradio_api/upload", files={"files": ("big.png", handle, "image/png")}, timeout=60)
    assert answer.status_code == 413 or "exceeds" in answer.text.lower() or "maximum" in answer.text.lower()
    _ok_afterwards(client)


def test_inline_base64_image_works(server):
    buffer = io.BytesIO()
    Image.open(ASTRONAUT).save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    status, event, _ = rest_predict(server, [{"url": url, "meta": {"_type": "gradio.FileData"}}, "hi"])
    assert (status, event) == (200, "complete")


FLAGGER = """
import sys
from flags.store import FlagStore
from PIL import Image
store = FlagStore(sys.argv[1])
image = Image.new("RGB", (64, 64), "red")
i = 0
while True:
    store.add(corrected="sad", text=f"flag {i}", image=image)
    i += 1
"""


def test_a_write_killed_before_its_rename_adds_no_record(tmp_path):
    """A kill between writing a record's temporary file and renaming it leaves a whole record under a temporary
    name: it must neither count nor come back as a second copy of the record."""
    store = FlagStore(tmp_path)
    record = store.add(corrected="sad", text="kept once", image=Image.new("RGB", (8, 8), "red"))
    leftover = tmp_path / "records" / f".tmp-killed{record.id}.json"
    leftover.write_bytes(store._record_path(record.id).read_bytes())
    assert [r.id for r in store.records()] == [record.id] and store.count() == 1


def test_sigkill_mid_flagging_leaves_a_loadable_store(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", FLAGGER, str(tmp_path)], env=env)
    deadline = time.time() + 30
    while time.time() < deadline and len(list((tmp_path / "records").glob("*.json"))) < 30:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    store = FlagStore(tmp_path)
    records = store.records()
    files = [p for p in (tmp_path / "records").glob("*.json") if not p.name.startswith(".tmp-")]
    assert len(records) >= 30 and len(records) == len(files) == store.count()  # every visible record is whole
    texts = sorted(int(r.text.split()[1]) for r in records)
    assert texts == list(range(len(texts)))  # none lost before the kill
    assert all(FlagStore(tmp_path).image_path(r).is_file() for r in records)


def test_hub_down_at_start_falls_back_to_the_default_with_a_notice(hub, monkeypatch, tiny_model_dir):
    import app

    monkeypatch.setattr("fusion.hub.DEFAULT_MODEL", tiny_model_dir)
    hub.fail_next("GET", r"/api/models/tester/emotion", status=503, times=20)
    predictor, notice = app.load_predictor("tester/emotion")
    assert predictor.source == str(tiny_model_dir)
    assert "could not be loaded" in notice and "offline default" in notice
    assert predictor.predict(text="hello").label in EMOTIONS


def test_the_token_never_leaks(hub, tmp_path, monkeypatch, tiny_model_dir, capfd, caplog):
    import logging
    import shutil

    from flags.sync import FlagSync
    from fusion.hub import ModelSourceError
    from space_config.deploy import deploy
    from train.export import push_model_folder

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_TOKEN", hub.token)
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    push_model_folder(folder, "tester/leak-check")
    store = FlagStore(tmp_path / "flags")
    store.add(corrected="happy", text=f"my token is not {hub.token[:3]}...", image=Image.new("RGB", (8, 8)))
    FlagSync(store, "tester/leak-flags").sync_once()
    deploy("tester/leak-space", model="tester/leak-check", set_token_secret=True)
    with pytest.raises(ModelSourceError) as err:
        push_model_folder(folder, "tester/leak-check", token=hub.token + "x")  # a wrong token in an error path
    out, errors = capfd.readouterr()
    texts = [out, errors, caplog.text, str(err.value)]
    texts += [p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file()]
    for repo_type, repo in (
        ("model", "tester/leak-check"),
        ("dataset", "tester/leak-flags"),
        ("space", "tester/leak-space"),
    ):
        texts += [data.decode(errors="ignore") for data in hub.repo_files(repo_type, repo).values()]
    assert not [t for t in texts if hub.token in t]
