"""Face finding as served: YuNet with landmarks (every face of a group, eyes levelled), Haar for older folders,
and one photometric style (histogram equalisation) for training and serving."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fusion.encoders import image_preprocess
from fusion.faces import crop_faces, detect_faces, yunet_available
from fusion.preprocess import PreprocessCfg, Preprocessor, image_transform
from tests.conftest import ASTRONAUT, SHARED
from tests.synthetic.media import group_photo

needs_yunet = pytest.mark.skipif(not yunet_available(), reason="the yuface wheel is built for CPython 3.11 on x86-64")


@needs_yunet
def test_yunet_finds_every_face_of_a_group_with_its_eyes():
    group, centres = group_photo()
    found = detect_faces(group, "yunet")
    assert len(found) == 3
    assert sorted(abs(min(centres, key=lambda c: abs(c - f.cx)) - f.cx) for f in found)[-1] < 20
    for face in found:
        (lx, ly), (rx, ry) = face.eyes
        assert lx < rx and abs(face.tilt) < 10  # drawn faces are upright


@needs_yunet
@pytest.mark.skipif(not (SHARED / "ferplus").is_dir(), reason="../shared/data/ferplus is not beside this checkout")
def test_three_real_faces_at_200_px_on_a_plain_background():
    """The picture of the issue: three FER faces side by side. YuNet finds them; Haar found 0 or 1 of such."""
    from bench.face_detectors import found_in, group_of_three
    from train.data import load_sources

    faces = list(load_sources([str(SHARED / "ferplus" / "validation.parquet")])[0]["all"].select(range(30))["image"])
    counts = [found_in(*group_of_three(faces, 3 * k), "yunet") for k in range(10)]
    assert all(found >= 2 for found, _ in counts) and sum(found for found, _ in counts) >= 27
    assert sum(false for _, false in counts) == 0


@needs_yunet
def test_a_tilted_face_is_turned_towards_upright():
    """YuNet's landmarks read a 20-degree tilt as about 13 (they lean towards upright): the crop is turned by that,
    which leaves it far less tilted than the face as it came."""
    astronaut = Image.open(ASTRONAUT).convert("RGB").resize((640, 640))
    tilted = astronaut.rotate(-20, resample=Image.Resampling.BILINEAR, fillcolor=(128, 128, 128))  # turned clockwise
    face = detect_faces(tilted, "yunet")[0]
    assert 8 < face.tilt < 25
    upright = crop_faces(tilted, margin=0.4, detector="yunet", align=True)[0]
    as_is = crop_faces(tilted, margin=0.4, detector="yunet", align=False)[0]
    assert upright.box == as_is.box and upright.image.size == as_is.image.size

    def tilt(crop):
        return detect_faces(crop.image.resize((400, 400)), "yunet")[0].tilt

    assert abs(tilt(upright)) < abs(tilt(as_is)) - 5


def test_saved_folders_keep_the_detector_they_were_served_with():
    stored = {"image_size": 48, "color_mode": "L", "mean": [0.5], "std": [0.25], "face_margin": 0.1}
    old = image_preprocess("face_resnet18", stored, stored=True)
    assert (old.detector, old.align, old.equalize) == ("haar", False, False)
    new = image_preprocess("face_resnet18")
    assert (new.detector, new.align, new.equalize) == ("yunet", True, True)
    assert PreprocessCfg.from_dict(new.to_dict(), stored=True) == new  # a folder saved now keeps its own


def test_equalisation_gives_every_exposure_one_style():
    cfg = image_preprocess("face_resnet18")
    prep = Preprocessor(cfg, tokenizer=None)
    face = Image.open(ASTRONAUT).convert("L").crop((160, 40, 320, 200)).resize((48, 48)).convert("RGB")
    dark = Image.eval(face, lambda v: int(v * 0.45))
    bright, dim = prep.transform(face), prep.transform(dark)
    unequalised = image_transform(PreprocessCfg.from_dict({**cfg.to_dict(), "equalize": False}))
    assert (bright - dim).abs().mean() < 0.1 * (unequalised(face) - unequalised(dark)).abs().mean()


def test_webcam_augmentation_keeps_shape_and_varies():
    cfg = image_preprocess("face_resnet18")
    transform = image_transform(cfg, is_train=True, augment="webcam", erasing=0.25)
    face = Image.open(ASTRONAUT).convert("RGB").crop((160, 40, 320, 200))
    torch.manual_seed(0)
    views = torch.stack([transform(face) for _ in range(8)])
    assert views.shape == (8, 1, 48, 48) and torch.isfinite(views).all()
    assert views.std(0).mean() > 0.1  # jitter, blur, JPEG, exposure: no two views alike
    with pytest.raises(ValueError, match="Unknown augmentation"):
        image_transform(cfg, is_train=True, augment="cartoon")


def test_haar_stays_where_yunet_is_missing(monkeypatch):
    import fusion.faces as faces

    monkeypatch.setattr(faces, "yunet_available", lambda: False)
    group, _ = group_photo()
    assert len(faces.detect_faces(group, "yunet")) == len(faces.detect_faces(group, "haar"))
    with pytest.raises(ValueError, match="Unknown face detector"):
        faces.detect_faces(group, "dlib")
    assert np.asarray(group).shape[2] == 3


def test_answers_name_yunet_where_the_wheel_is_installed():
    pytest.importorskip("yuface", reason="the yuface wheel is built for CPython 3.11 on x86-64 only")
    import app
    from fusion.hub import DEFAULT_MODEL
    from fusion.predictor import EmotionPredictor

    predictor = EmotionPredictor.load(DEFAULT_MODEL)
    answer = predictor.predict(image=ASTRONAUT, text="What a day!")
    assert answer.detector == answer.to_dict()["detector"] == "yunet"
    assert predictor.predict(text="What a day!").to_dict()["detector"] is None  # no image, no detector
    assert "Haar" not in app.footer(predictor)


# A fresh interpreter that truly cannot import yuface (as where no wheel is built for the platform).
WITHOUT_YUFACE = """
import json, sys

class NoYuface:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "yuface":
            raise ImportError("No module named 'yuface'")

sys.meta_path.insert(0, NoYuface())
import app
from fusion.hub import DEFAULT_MODEL
from fusion.predictor import EmotionPredictor

predictor = EmotionPredictor.load(DEFAULT_MODEL)
answer = predictor.predict(image=sys.argv[1], text="What a day!")
print(json.dumps({"answer": answer.to_dict(), "footer": app.footer(predictor), "yuface": "yuface" in sys.modules}))
"""


def test_answers_name_haar_and_the_footer_says_so_where_the_wheel_is_missing():
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", WITHOUT_YUFACE, str(ASTRONAUT)], capture_output=True, text=True,
                          timeout=300, cwd=ASTRONAUT.parent.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["yuface"] is False and out["answer"]["detector"] == "haar"
    assert out["answer"]["face_found"] is True  # the astronaut's frontal face: Haar finds it too
    assert "Haar cascade" in out["footer"] and "`yuface` wheel is not installed" in out["footer"]
    assert "yuface wheel is not installed" in done.stderr  # and the log says so once


def _bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


@needs_yunet
def test_yunet_reads_the_faces_the_wheel_reports():
    """`fusion.yunet` calls the wheel's library itself: every face, score, box and landmark as yuface's binding
    gives them (a group of three, the example photo, a picture without a face)."""
    from yuface.yuface import detect as binding

    from fusion import yunet

    group, _ = group_photo()
    blank = Image.new("RGB", (300, 200), (90, 140, 60))
    counts = []
    for image in (group, Image.open(ASTRONAUT), blank):
        ours, theirs = yunet.detect(_bgr(image)), np.asarray(binding(_bgr(image)))
        assert ours.dtype == np.int16 and np.array_equal(ours, theirs[:, :15])
        counts.append(int((ours[:, 0] > 60).sum()))
    assert counts == [3, 1, 0]
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        yunet.detect(np.zeros((10, 10), np.uint8))


@needs_yunet
def test_yunet_keeps_no_memory_per_photo():
    """yuface.detect leaves a 36 KB buffer behind on every call (a server's memory grew with each photo); the
    live heap (glibc's count of bytes in use) must stay where it was over 300 detections."""
    import gc

    from bench.common import heap_in_use_mb
    from fusion import yunet

    if heap_in_use_mb() is None:
        pytest.skip("needs glibc's mallinfo2 (glibc 2.33+)")
    photo = _bgr(Image.open(ASTRONAUT))
    for _ in range(10):
        yunet.detect(photo)
    gc.collect()
    before = heap_in_use_mb()
    for _ in range(300):
        yunet.detect(photo)
    gc.collect()
    grown_kb = (heap_in_use_mb() - before) * 1024
    assert grown_kb < 300 * 36 / 10, f"{grown_kb:.0f} KB more in use after 300 detections"


@needs_yunet
def test_yunet_works_in_a_forked_worker():
    """A data-loading worker is forked from a process that may have found faces already (and started the
    detection thread, which the child does not inherit): the child starts its own."""
    import multiprocessing

    from fusion import yunet

    photo = _bgr(Image.open(ASTRONAUT))
    expected = yunet.detect(photo)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert np.array_equal(pool.apply_async(yunet.detect, (photo,)).get(timeout=60), expected)
