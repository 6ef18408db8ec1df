"""Every public way to save or push a model writes a folder that `EmotionPredictor.load` loads and answers the same."""

import json

import pytest

from fusion.hub import DEFAULT_MODEL, ModelSourceError, load_model_folder
from fusion.model import EmotionFusionModel
from fusion.predictor import EmotionPredictor
from tests.conftest import ASTRONAUT, tiny_model

REQUESTS = [(ASTRONAUT, "What a wonderful surprise!"), (None, "I hate waiting in lines"), (ASTRONAUT, None)]


def _answers(predictor: EmotionPredictor) -> list[dict]:
    return [predictor.predict(image=image, text=text).to_dict() for image, text in REQUESTS]


@pytest.fixture(scope="module")
def default_predictor() -> EmotionPredictor:
    return EmotionPredictor.load(DEFAULT_MODEL, device="cpu")


@pytest.fixture(scope="module")
def small_predictor() -> EmotionPredictor:
    model = tiny_model().eval()
    return EmotionPredictor(model, model.tokenizer)


@pytest.mark.parametrize("which", ["default", "small"])
def test_save_pretrained_loads_back_with_the_same_answers(which, request, tmp_path):
    predictor = request.getfixturevalue(f"{which}_predictor")
    predictor.model.save_pretrained(tmp_path / "saved")
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= {
        p.name for p in (tmp_path / "saved").iterdir()
    }
    loaded = EmotionPredictor.load(tmp_path / "saved")
    assert _answers(loaded) == _answers(predictor)
    again = EmotionFusionModel.from_pretrained(tmp_path / "saved")  # the mixin's loader keeps the tokenizer too
    assert again.tokenizer is not None and again.config == predictor.model.config


@pytest.mark.parametrize("which", ["default", "small"])
def test_push_to_hub_loads_back_with_the_same_answers(which, request, hub):
    predictor = request.getfixturevalue(f"{which}_predictor")
    predictor.model.push_to_hub(f"tester/pushed-{which}", token=hub.token)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(
        hub.repo_files("model", f"tester/pushed-{which}")
    )
    loaded = EmotionPredictor.load(f"tester/pushed-{which}", token=hub.token)
    assert _answers(loaded) == _answers(predictor)
    from_mixin = EmotionFusionModel.from_pretrained(f"tester/pushed-{which}", token=hub.token)
    assert from_mixin.tokenizer is not None


def test_a_model_without_a_tokenizer_refuses_to_save_and_says_how(tmp_path, tokenizer):
    model = EmotionFusionModel(**tiny_model().config)  # built from config alone: no tokenizer known
    with pytest.raises(ValueError, match="pass `tokenizer=`"):
        model.save_pretrained(tmp_path / "bare")
    assert not (tmp_path / "bare" / "model.safetensors").exists()
    model.save_pretrained(tmp_path / "bare", tokenizer=tokenizer)
    assert EmotionPredictor.load(tmp_path / "bare").predict(text="fine").label


def test_a_folder_without_a_tokenizer_is_refused_with_a_reason(tmp_path, small_predictor):
    folder = tmp_path / "m"
    small_predictor.model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    with pytest.raises(ModelSourceError, match="has no tokenizer"):
        load_model_folder(folder)


def test_an_int8_copy_and_a_foreign_config_are_refused(tmp_path, small_predictor, default_predictor):
    from fusion.quantize import quantize_model, read_calibration

    with pytest.raises(ValueError, match="int8 serving copy"):  # the default's CNN in static int8
        quantize_model(default_predictor.model, read_calibration(DEFAULT_MODEL)).save_pretrained(tmp_path / "int8")
    config = {**small_predictor.model.config, "temperature": 3.0}
    with pytest.raises(ValueError, match="model's own config"):
        small_predictor.model.save_pretrained(tmp_path / "other", config=config)
    small_predictor.model.save_pretrained(tmp_path / "same", config=small_predictor.model.config)
    assert json.loads((tmp_path / "same" / "config.json").read_text()) == small_predictor.model.config
