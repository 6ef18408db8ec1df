import math
import shutil
import traceback

import pytest
from PIL import Image

from fusion.hub import ModelSourceError
from fusion.labels import EMOTIONS
from fusion.predictor import EmotionPredictor, NoFaceError, NoInputError
from fusion.preprocess import InvalidImageError
from tests.conftest import ASTRONAUT


def _is_distribution(probs: dict[str, float]) -> bool:
    return list(probs) == list(EMOTIONS) and math.isclose(sum(probs.values()), 1.0, rel_tol=1e-5)


def test_image_and_text(predictor):
    result = predictor.predict(image=ASTRONAUT, text="What a wonderful day!")
    assert _is_distribution(result.probabilities)
    assert result.label == max(result.probabilities, key=result.probabilities.get)
    assert _is_distribution(result.text_probabilities) and _is_distribution(result.image_probabilities)
    assert result.face_found is True and result.face_crop is not None
    assert result.face_crop.size[0] == result.face_box[2] - result.face_box[0]


def test_image_only_and_text_only(predictor):
    image_only = predictor.predict(image=Image.open(ASTRONAUT))
    assert image_only.text_probabilities is None and _is_distribution(image_only.image_probabilities)
    text_only = predictor.predict(text="I am scared of the dark")
    assert text_only.image_probabilities is None and text_only.face_found is None and text_only.face_box is None
    assert _is_distribution(text_only.probabilities)
    as_json = text_only.to_dict()
    assert set(as_json) == {
        "label",
        "probabilities",
        "text_probabilities",
        "image_probabilities",
        "face_found",
        "face_box",
        "faces",
        "note",
        "doubt",
        "detector",
    }
    assert as_json["detector"] is None and image_only.to_dict()["detector"] in ("yunet", "haar")


def test_no_face_alone_is_a_clear_error_and_with_text_the_text_answers(predictor):
    landscape = Image.new("RGB", (320, 200), (30, 160, 90))
    with pytest.raises(NoFaceError, match="No face was found in the image. Try a photo where the face is large"):
        predictor.predict(image=landscape)
    text = "I am scared of the dark"
    with_text, text_only = predictor.predict(image=landscape, text=text), predictor.predict(text=text)
    assert with_text.face_found is False and with_text.face_box is None and with_text.image_probabilities is None
    assert with_text.probabilities == text_only.probabilities and "No face found" in with_text.note
    assert text_only.note == text_only.doubt  # nothing to note but (with this random model) doubt


def test_a_tight_face_crop_counts_as_a_face(predictor):
    crop = Image.open(ASTRONAUT).crop((110, 40, 170, 100))  # 60 px, forehead to chin
    result = predictor.predict(image=crop)
    assert result.face_found and len(result.faces) == 1 and result.image_probabilities is not None


@pytest.mark.parametrize("text", [None, "", "   \n\t"])
def test_neither_modality_is_a_clear_value_error(predictor, text):
    with pytest.raises(ValueError, match="give a face image, a text, or both") as err:
        predictor.predict(image=None, text=text)
    assert isinstance(err.value, NoInputError)


def test_corrupt_image_message_is_for_humans(predictor, tmp_path):
    broken = tmp_path / "photo.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(InvalidImageError) as err:
        predictor.predict(image=broken, text="hello")
    message = str(err.value)
    assert "could not be read as an image" in message
    assert "Traceback" not in message and 'File "' not in message and "PIL" not in message
    assert "Traceback" not in "".join(traceback.format_exception_only(err.value))


def test_non_string_text_is_rejected(predictor):
    with pytest.raises(ValueError, match="must be a string"):
        predictor.predict(text=123)  # type: ignore[arg-type]


def test_batch_matches_single_predictions_and_isolates_bad_items(predictor):
    items = [
        (ASTRONAUT, "I love this"),
        (None, "a somewhat longer sentence about being really very angry at everything"),
        {"image": ASTRONAUT},
        (b"garbage", "text"),
        (None, None),
    ]
    results = predictor.predict_batch(items, return_errors=True)
    assert isinstance(results[3], InvalidImageError) and isinstance(results[4], NoInputError)
    for item, batched in zip(items[:3], results[:3]):
        single = predictor.predict(*item) if isinstance(item, tuple) else predictor.predict(**item)
        for label in EMOTIONS:
            assert batched.probabilities[label] == pytest.approx(single.probabilities[label], abs=1e-5)
    with pytest.raises(InvalidImageError):
        predictor.predict_batch(items)
    with pytest.raises(ValueError, match="Unknown keys"):
        predictor.predict_batch([{"img": ASTRONAUT}])


def test_predictor_is_in_eval_mode(predictor):
    assert not predictor.model.training
    assert not any(m.training for m in predictor.model.modules())


def test_pickle_only_folder_is_refused(tiny_model_dir, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelSourceError, match="pickled weights .*pytorch_model.bin.* never loaded"):
        EmotionPredictor.load(folder)


def test_bad_sources_have_clear_messages(tmp_path):
    with pytest.raises(ModelSourceError, match="not a model folder or a Hub repo id"):
        EmotionPredictor.load(tmp_path / "missing-folder")
    with pytest.raises(ModelSourceError, match="has no config.json"):
        EmotionPredictor.load(tmp_path)
    with pytest.raises(ModelSourceError, match="not in the local cache and the Hub cannot be reached"):
        EmotionPredictor.load("someone/emotion-model")  # HF_HUB_OFFLINE=1 in tests


def _group_photo() -> tuple[Image.Image, int]:
    """The astronaut photo next to a smaller copy: two real faces, the larger on the left."""
    photo = Image.open(ASTRONAUT).convert("RGB")
    small = photo.resize((photo.width * 2 // 3, photo.height * 2 // 3))
    group = Image.new("RGB", (photo.width + small.width, photo.height), (255, 255, 255))
    group.paste(photo, (0, 0))
    group.paste(small, (photo.width, 0))
    return group, photo.width


def test_every_face_is_scored_and_the_largest_is_fused(predictor):
    group, split = _group_photo()
    result = predictor.predict(image=group, text="what a day")
    assert len(result.faces) == 2 and [f.fused for f in result.faces] == [True, False]
    larger, smaller = result.faces
    assert larger.box[2] <= split < smaller.box[0]  # largest first: the left photo's face
    assert result.face_box == larger.box and result.image_probabilities == larger.probabilities
    assert larger.probabilities != smaller.probabilities and _is_distribution(smaller.probabilities)
    assert result.note.startswith(
        "2 faces found (each was scored); the largest was fused with the text (the crop shown)."
    )
    as_json = result.to_dict()["faces"]
    assert as_json[1] == {"box": list(smaller.box), "probabilities": smaller.probabilities, "fused": False}


def test_the_user_picks_the_face_to_fuse(predictor):
    group, _ = _group_photo()
    largest, second = (
        predictor.predict(image=group, text="what a day"),
        predictor.predict(image=group, text="what a day", face=2),
    )
    assert second.face_box == largest.faces[1].box and [f.fused for f in second.faces] == [False, True]
    assert second.image_probabilities == largest.faces[1].probabilities
    assert second.probabilities != largest.probabilities and "face 2 was fused" in second.note
    with pytest.raises(ValueError, match="Face 3 was asked for, but 2 face"):
        predictor.predict(image=group, face=3)
