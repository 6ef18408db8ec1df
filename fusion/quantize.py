"""int8 serving, switched on at load time: `EmotionPredictor.load(source, quantize="int8")`.

- The image CNN: static int8 (PyTorch FX graph mode, x86 backend: conv+bn+relu fused, per-channel
  weights). Its activation ranges come from `int8_calibration.json` beside the weights, measured once
  on a few hundred training images (`python -m tools.calibrate_int8`). Without that file, or for a
  network FX cannot trace, the CNN stays fp32 and a warning says so.
- The text encoder and the heads stay fp32. Dynamic int8 of every Linear (activations quantized per call,
  one scale per tensor) changed the top label of 6.3% of dev texts on the default (`bench/int8_agreement.py`;
  keeping the feed-forward layers fp32 still changed 1.6%), and the text branch is under a tenth of a
  request's time: answers that change are not worth what it saves.
The int8 weights are derived here, at load time; no second copy of the weights is stored anywhere.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)
MODES = ("none", "int8")
CALIBRATION_FILE = "int8_calibration.json"


def _qconfig_mapping():
    from torch.ao.quantization import QConfig, QConfigMapping
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    activation = MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=True)
    weight = PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    return QConfigMapping().set_global(QConfig(activation=activation, weight=weight))


def _prepare(network: nn.Module, example: torch.Tensor) -> nn.Module:
    from torch.ao.quantization.quantize_fx import prepare_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice, once per load
        return prepare_fx(copy.deepcopy(network).eval(), _qconfig_mapping(), example_inputs=(example,))


def _observers(prepared: nn.Module) -> dict[str, nn.Module]:
    return {
        name: m for name, m in prepared.named_modules() if hasattr(m, "min_val") and "activation_post_process" in name
    }


def calibration_inputs(model, tokenizer, images: list, batch: int = 32) -> list[torch.Tensor]:
    """Batches of model inputs made from `images` by the model's own (eval) preprocessing."""
    from fusion.preprocess import Preprocessor

    prep = Preprocessor(model.preprocess_cfg, tokenizer, is_train=False)
    tensors = [prep.image_tensor(prep.face(image)) for image in images if image is not None]
    return [torch.stack(tensors[i : i + batch]) for i in range(0, len(tensors), batch)]


@torch.inference_mode()
def calibrate(network: nn.Module, batches: list[torch.Tensor]) -> dict[str, Any]:
    """Activation ranges of the CNN over `batches` (model inputs made by the model's own preprocessing)."""
    prepared = _prepare(network, batches[0][:1])
    for batch in batches:
        prepared(batch)
    ranges = {name: [float(m.min_val), float(m.max_val)] for name, m in _observers(prepared).items()}
    return {"input_shape": list(batches[0].shape[1:]), "images": sum(len(b) for b in batches), "ranges": ranges}


def calibrate_on_rows(model, tokenizer, rows, images: int = 300) -> dict[str, Any]:
    """`calibrate` on `images` rows of a dataset with an image column (shuffled, seed 0: files are often
    grouped by label)."""
    rows = rows.shuffle(seed=0).select(range(min(images, len(rows))))
    return calibrate(model.image.model, calibration_inputs(model, tokenizer, rows["image"]))


def static_int8(network: nn.Module, calibration: dict[str, Any]) -> nn.Module:
    """The CNN in static int8, with the stored activation ranges (raises if they do not fit the network)."""
    from torch.ao.quantization.quantize_fx import convert_fx

    prepared = _prepare(network, torch.zeros(1, *calibration["input_shape"]))
    observers = _observers(prepared)
    if set(observers) != set(calibration["ranges"]):
        raise ValueError("The int8 calibration does not match this network; recalibrate it.")
    for name, (low, high) in calibration["ranges"].items():
        observers[name].min_val.fill_(low)
        observers[name].max_val.fill_(high)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_fx(prepared)


def quantize_model(model, calibration: dict[str, Any] | None):
    """The model for int8 serving (a new object; `model` is left as it is): the CNN in static int8."""
    model = copy.deepcopy(model).eval()
    if model.image is None:
        logger.warning("int8 serving quantizes the image encoder only; this model has none, so it serves fp32.")
    elif calibration is None:
        logger.warning("No %s for the image encoder: the model serves fp32.", CALIBRATION_FILE)
    else:
        try:
            model.image.model = static_int8(model.image.model, calibration)
        except Exception as err:  # noqa: BLE001 - an untraceable network still serves, in fp32
            logger.warning("Image encoder kept in fp32 (%s: %s).", type(err).__name__, err)
    return model


def read_calibration(folder: Path) -> dict[str, Any] | None:
    path = Path(folder) / CALIBRATION_FILE
    return json.loads(path.read_text()) if path.is_file() else None
