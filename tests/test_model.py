import json

import pytest
import torch

from fusion.encoders import IMAGE_ENCODERS, image_preprocess
from fusion.model import EmotionFusionModel, create_model
from fusion.preprocess import PreprocessCfg
from tests.conftest import tiny_model


def _batch(n: int = 3, tokens: int = 6, channels: int = 3, size: int = 64):
    torch.manual_seed(1)
    return {
        "pixel_values": torch.randn(n, channels, size, size),
        "input_ids": torch.randint(1000, 2000, (n, tokens)),
        "attention_mask": torch.ones(n, tokens, dtype=torch.long),
    }


@pytest.mark.parametrize("arch", sorted(IMAGE_ENCODERS))
def test_registry_variants_forward_and_round_trip(arch, tmp_path):
    torch.manual_seed(0)
    model = create_model("bert-tiny-random", arch, pretrained_image=False, fusion_hidden=[16]).eval()
    cfg = model.preprocess_cfg
    assert cfg == image_preprocess(arch)  # the registry entry's input, nothing else
    assert model.image.convert_from is None  # so the tower only runs its network
    batch = _batch(2, channels=cfg.channels, size=cfg.image_size)
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape == out.text_logits.shape == out.image_logits.shape == (2, 7)
    assert model.image.dim == IMAGE_ENCODERS[arch].dim
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["preprocess"]
    assert PreprocessCfg.from_dict(saved) == cfg
    loaded = EmotionFusionModel.from_pretrained(tmp_path).eval()
    assert loaded.preprocess_cfg == cfg
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, out.logits)


@pytest.mark.parametrize("arch", sorted(IMAGE_ENCODERS))
def test_registry_preprocessing_makes_the_encoders_input(arch, tokenizer):
    from PIL import Image

    from fusion.preprocess import Preprocessor

    cfg = image_preprocess(arch)
    prep = Preprocessor(cfg, tokenizer)
    face = prep.face(Image.new("RGB", (300, 200), (120, 80, 60)))
    assert prep.image_tensor(face).shape == (cfg.channels, cfg.image_size, cfg.image_size)
    assert image_preprocess(arch, {"face_margin": 0.3}).face_margin == 0.3  # settings may be overridden


def test_packaged_minilm_text_encoder_loads_pretrained_weights():
    from transformers import AutoModel

    from fusion.encoders import packaged_minilm_path

    model = create_model("minilm-l6", "resnet18", pretrained_image=False)
    reference = AutoModel.from_pretrained(packaged_minilm_path())
    name = "encoder.layer.0.attention.self.query.weight"
    assert torch.equal(model.text.model.state_dict()[name], reference.state_dict()[name])
    assert model.text.dim == 384


def test_forward_with_both_image_only_text_only():
    model = tiny_model().eval()
    batch = _batch()
    with torch.no_grad():
        both = model(**batch)
        image_only = model(pixel_values=batch["pixel_values"])
        text_only = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    for out in (both, image_only, text_only):
        assert out.logits.shape == (3, 7) and torch.isfinite(out.logits).all()
    assert image_only.text_present.tolist() == [False] * 3 and image_only.image_present.all()
    assert text_only.image_present.tolist() == [False] * 3
    # The missing modality is a learned placeholder, so each one-modality answer differs from the pair's.
    assert not torch.allclose(both.logits, image_only.logits)
    assert not torch.allclose(both.logits, text_only.logits)
    # Per-modality heads read only their own modality.
    assert torch.allclose(both.image_logits, image_only.image_logits, atol=1e-5)
    assert torch.allclose(both.text_logits, text_only.text_logits, atol=1e-5)
    with pytest.raises(ValueError, match="No input"):
        model()


def test_missing_rows_use_placeholder_and_skip_the_encoder():
    model = tiny_model().eval()
    batch = _batch()
    calls = []
    model.image.register_forward_hook(lambda _m, inputs, _o: calls.append(inputs[0].shape[0]))
    present = torch.tensor([True, False, True])
    with torch.no_grad():
        mixed = model(**batch, image_present=present)
        text_only = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        full = model(**batch)
    assert calls[0] == 2  # only the rows with an image went through the ResNet
    assert torch.allclose(mixed.logits[1], text_only.logits[1], atol=1e-5)
    assert torch.allclose(mixed.logits[0], full.logits[0], atol=1e-5)


def test_frozen_image_encoder_batchnorm_does_not_drift():
    model = tiny_model(freeze_image=True)
    model.train()
    assert not model.image.training and model.head.training
    bn_before = model.image.model.bn1.running_mean.clone()
    conv_before = model.image.model.conv1.weight.clone()
    head_before = model.head.mlp[0].weight.clone()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = _batch(4)
    loss = torch.nn.functional.cross_entropy(model(**batch).logits, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    optimizer.step()
    assert torch.equal(model.image.model.bn1.running_mean, bn_before)
    assert torch.equal(model.image.model.conv1.weight, conv_before)
    assert model.image.model.conv1.weight.grad is None
    assert not torch.equal(model.head.mlp[0].weight, head_before)


def test_unfrozen_image_encoder_does_update_batchnorm():
    model = tiny_model(freeze_image=False).train()
    before = model.image.model.bn1.running_mean.clone()
    model(**_batch(4))
    assert not torch.equal(model.image.model.bn1.running_mean, before)


def test_modality_dropout_hides_exactly_one_modality_while_training():
    model = tiny_model(modality_dropout=1.0).train()
    out = model(**_batch(16))
    assert (out.text_present ^ out.image_present).all()
    assert 0 < int(out.text_present.sum()) < 16  # both kinds of drop happen
    model.eval()
    with torch.no_grad():
        out = model(**_batch(4))
    assert out.text_present.all() and out.image_present.all()  # never at inference


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    model = tiny_model().eval()
    model.set_temperature(1.7)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["labels"][0] == "angry" and config["temperature"] == 1.7
    assert config["preprocess"]["image_size"] == 224 and config["fusion_hidden"] == [512]
    assert not (tmp_path / "pytorch_model.bin").exists()
    loaded = EmotionFusionModel.from_pretrained(tmp_path).eval()
    assert loaded.temperature == 1.7
    batch = _batch()
    with torch.no_grad():
        a, b = model(**batch), loaded(**batch)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.text_logits, b.text_logits)


def test_bad_temperature_and_labels_are_rejected():
    model = tiny_model()
    with pytest.raises(ValueError, match="positive"):
        model.set_temperature(0)
    with pytest.raises(ValueError, match="labels expected"):
        EmotionFusionModel(None, {"arch": "mini_xception"}, labels=["a", "b"])
    with pytest.raises(ValueError, match="needs a text encoder, an image encoder, or both"):
        EmotionFusionModel(None, None)


def test_logit_fusion_adds_the_branches_and_a_missing_one_adds_nothing():
    model = tiny_model(fusion="logits").eval()
    assert model.head is None
    batch = _batch()
    with torch.no_grad():
        both = model(**batch)
        image_only = model(pixel_values=batch["pixel_values"])
        text_only = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    torch.testing.assert_close(both.logits, both.text_logits + both.image_logits)
    torch.testing.assert_close(image_only.logits, both.image_logits)
    torch.testing.assert_close(text_only.logits, both.text_logits)


def test_a_one_tower_model_saves_loads_and_says_what_it_reads(tmp_path, tokenizer):
    from fusion.hub import load_model_folder
    from fusion.predictor import EmotionPredictor, NoInputError
    from train.export import save_model_folder

    torch.manual_seed(0)
    model = create_model("bert-tiny-random", "none", fusion="logits").eval()
    assert model.image is None and model.image_head is None and not model.has("image")
    save_model_folder(model, tokenizer, tmp_path / "text-only")
    loaded, _ = load_model_folder(tmp_path / "text-only")
    batch = _batch()
    with torch.no_grad():
        text = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        torch.testing.assert_close(loaded(**text).logits, model(**text).logits)
    with pytest.raises(ValueError, match="no image encoder"):
        loaded(**batch)
    predictor = EmotionPredictor.load(tmp_path / "text-only")
    from PIL import Image

    with pytest.raises(NoInputError, match="reads texts only"):
        predictor.predict(image=Image.new("RGB", (48, 48)))
    answer = predictor.predict(image=Image.new("RGB", (48, 48)), text="hello there")
    assert answer.image_probabilities is None and "no image branch" in answer.note


def test_loading_is_strict_and_takes_left_out_weights_from_the_base(tmp_path, tokenizer):
    """A folder may leave out the packaged word embeddings (unchanged by training): they come back from the
    package. Any other missing or unexpected tensor is an error, never silently random."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from fusion.hub import ModelSourceError, load_model_folder
    from train.export import save_model_folder

    model = create_model("minilm-l6", "none", fusion="logits").eval()
    folder = save_model_folder(model, tokenizer, tmp_path / "m", half=True, leave_out_base=True)
    state = load_file(folder / "model.safetensors")
    assert "text.model.embeddings.word_embeddings.weight" not in state
    assert state["text.model.encoder.layer.0.attention.self.query.weight"].dtype == torch.float16
    assert state["text_head.weight"].dtype == torch.float32  # heads stay fp32
    loaded, _ = load_model_folder(folder)
    key = "text.model.embeddings.word_embeddings.weight"
    assert torch.equal(loaded.state_dict()[key], model.state_dict()[key])
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        metadata = handle.metadata()
    del state["text.model.encoder.layer.0.attention.self.query.weight"]  # a fine-tuned tensor: never from the base
    save_file(state, str(folder / "model.safetensors"), metadata)
    with pytest.raises(ModelSourceError, match="1 tensor\\(s\\) missing"):
        load_model_folder(folder)
