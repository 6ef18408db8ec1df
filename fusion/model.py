"""The late-fusion emotion model: text tower + image tower -> fusion MLP -> 7 logits.

A missing modality is replaced by a learned placeholder embedding (never by zero inputs), and
small auxiliary heads say what each modality predicts on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from fusion.encoders import (
    ImageTower,
    TextTower,
    image_preprocess,
    load_pretrained_image,
    load_pretrained_text,
    text_spec,
    text_tower_config,
)
from fusion.labels import NUM_LABELS, id2label

DEFAULT_HIDDEN = [512]


@dataclass
class FusionOutput:
    logits: torch.Tensor  # (B, num_labels) fused
    text_logits: torch.Tensor  # (B, num_labels) from the text head; rows without text are meaningless
    image_logits: torch.Tensor  # (B, num_labels) from the image head; rows without an image are meaningless
    text_present: torch.Tensor  # (B,) bool, after any modality dropout
    image_present: torch.Tensor  # (B,) bool


class ModalityEmbedding(nn.Module):
    """Normalises a modality's features and substitutes a learned vector where it is absent."""

    def __init__(self, dim: int, normalize: bool = True):
        super().__init__()
        self.norm = nn.LayerNorm(dim) if normalize else nn.Identity()
        self.placeholder = nn.Parameter(torch.randn(dim) * 0.02)

    def forward(self, feats: torch.Tensor | None, present: torch.Tensor) -> torch.Tensor:
        missing = self.placeholder.expand(present.shape[0], -1)
        if feats is None:
            return missing
        return torch.where(present.unsqueeze(1), self.norm(feats), missing)


class FusionHead(nn.Module):
    """Concatenated modality embeddings -> dense layers -> logits."""

    def __init__(self, in_dim: int, hidden: list[int], dropout: float, num_labels: int):
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.ReLU(), nn.Dropout(dropout)]
            in_dim = width
        layers.append(nn.Linear(in_dim, num_labels))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class EmotionFusionModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="emotion-fusion",
    tags=["emotion-recognition", "multimodal", "image-classification", "text-classification"],
    license="apache-2.0",
):
    """Built from plain config only; `create_model` is the way to start from pretrained encoders."""

    def __init__(
        self,
        text_encoder: dict[str, Any],
        image_encoder: dict[str, Any],
        fusion_hidden: list[int] | None = None,
        dropout: float = 0.3,
        num_labels: int = NUM_LABELS,
        labels: list[str] | None = None,
        freeze_text: bool = False,
        freeze_image: bool = False,
        modality_dropout: float = 0.0,
        temperature: float = 1.0,
        preprocess: dict[str, Any] | None = None,
        text_norm: bool = True,
        image_norm: bool = True,
    ):
        super().__init__()
        self.labels = list(labels or id2label.values())
        if len(self.labels) != num_labels:
            raise ValueError(f"{num_labels} labels expected, got {self.labels}")
        # The stored preprocessing, over the image encoder's own (its registry entry) for what is not stored.
        self.preprocess_cfg = image_preprocess(image_encoder.get("arch", "resnet18"), preprocess)
        self.text = TextTower(**text_encoder)
        self.image = ImageTower(**image_encoder, preprocess=self.preprocess_cfg)
        # Logit-like features (mini-Xception) skip the LayerNorm, which would rescale their confidence.
        self.text_embed = ModalityEmbedding(self.text.dim, normalize=text_norm)
        self.image_embed = ModalityEmbedding(self.image.dim, normalize=image_norm)
        self.head = FusionHead(
            self.text.dim + self.image.dim,
            DEFAULT_HIDDEN if fusion_hidden is None else list(fusion_hidden),
            dropout,
            num_labels,
        )
        self.text_head = nn.Linear(self.text.dim, num_labels)
        self.image_head = nn.Linear(self.image.dim, num_labels)
        self.modality_dropout = modality_dropout
        self.temperature = temperature
        self.set_frozen(text=freeze_text, image=freeze_image)

    def set_frozen(self, text: bool, image: bool) -> None:
        """Freeze or unfreeze each tower (kept in the config that `save_pretrained` writes)."""
        self.freeze_text, self.freeze_image = text, image
        self.text.requires_grad_(not text)
        self.image.requires_grad_(not image)
        self._update_config(freeze_text=text, freeze_image=image)
        self.train(self.training)

    def _update_config(self, **values: Any) -> None:
        config = getattr(self, "_hub_mixin_config", None)
        if isinstance(config, dict):
            config.update(values)

    def set_temperature(self, temperature: float) -> None:
        """Set the calibration temperature, also in the config that `save_pretrained` writes."""
        if not temperature > 0:
            raise ValueError(f"Temperature must be positive, got {temperature}.")
        self.temperature = float(temperature)
        self._update_config(temperature=self.temperature)

    def train(self, mode: bool = True) -> EmotionFusionModel:
        """Frozen towers stay in eval mode, so BatchNorm statistics and dropout never change them."""
        super().train(mode)
        if self.freeze_text:
            self.text.eval()
        if self.freeze_image:
            self.image.eval()
        return self

    # -- seams used by the predictor, the feature cache and the benchmarks --------------------

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_text):
            return self.text(input_ids, attention_mask)

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_image):
            return self.image(pixel_values)

    def forward_head(
        self,
        text_feats: torch.Tensor | None,
        image_feats: torch.Tensor | None,
        text_present: torch.Tensor,
        image_present: torch.Tensor,
    ) -> FusionOutput:
        t = self.text_embed(text_feats, text_present)
        i = self.image_embed(image_feats, image_present)
        return FusionOutput(
            logits=self.head(torch.cat([t, i], dim=1)),
            text_logits=self.text_head(t),
            image_logits=self.image_head(i),
            text_present=text_present,
            image_present=image_present,
        )

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_present: torch.Tensor | None = None,
        text_present: torch.Tensor | None = None,
        text_feats: torch.Tensor | None = None,
        image_feats: torch.Tensor | None = None,
    ) -> FusionOutput:
        """Raw inputs, or precomputed encoder features (`text_feats`/`image_feats`, the training cache)."""
        batch = _batch_size(pixel_values, input_ids, text_feats, image_feats)
        device = self.text_embed.placeholder.device  # a plain parameter (int8 Linear weights are methods)
        image_present = _presence(image_present, pixel_values if image_feats is None else image_feats, batch, device)
        text_present = _presence(text_present, input_ids if text_feats is None else text_feats, batch, device)
        if self.training and self.modality_dropout > 0:
            text_present, image_present = self._drop_modalities(text_present, image_present)
        if text_feats is None:
            text_feats = encode_rows(self.encode_text, text_present, input_ids, attention_mask)
        if image_feats is None:
            image_feats = encode_rows(self.encode_image, image_present, pixel_values)
        return self.forward_head(text_feats, image_feats, text_present, image_present)

    def _drop_modalities(self, text: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hide one modality of a paired sample with probability `modality_dropout` (never both)."""
        both = text & image
        drop = both & (torch.rand_like(text, dtype=torch.float) < self.modality_dropout)
        drop_text = drop & (torch.rand_like(text, dtype=torch.float) < 0.5)
        return text & ~drop_text, image & ~(drop & ~drop_text)


def _batch_size(*tensors: torch.Tensor | None) -> int:
    sizes = {t.shape[0] for t in tensors if t is not None}
    if not sizes:
        raise ValueError("No input: give pixel_values, input_ids, or both.")
    if len(sizes) > 1:
        raise ValueError(f"Image and text batches differ in size: {sorted(sizes)}")
    return sizes.pop()


def _presence(mask: torch.Tensor | None, inputs: torch.Tensor | None, batch: int, device) -> torch.Tensor:
    if inputs is None:
        return torch.zeros(batch, dtype=torch.bool, device=device)
    if mask is None:
        return torch.ones(batch, dtype=torch.bool, device=device)
    return mask.to(device=device, dtype=torch.bool)


def encode_rows(
    encode: Callable[..., torch.Tensor], present: torch.Tensor, *inputs: torch.Tensor | None
) -> torch.Tensor | None:
    """Run an encoder only on the rows where its modality is present; other rows are zeros (None: no row has it)."""
    if inputs[0] is None or not bool(present.any()):
        return None
    if bool(present.all()):
        return encode(*inputs)
    rows = present.nonzero().squeeze(1)
    feats = encode(*(x[rows] for x in inputs))
    return feats.new_zeros(present.shape[0], feats.shape[1]).index_copy(0, rows, feats)


def create_model(
    text: str = "minilm-l6",
    image: str = "resnet18",
    pretrained_text: bool = True,
    pretrained_image: bool = True,
    image_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> EmotionFusionModel:
    """Build a model from named (or Hub/local) encoders and load their pretrained weights.

    The preprocessing is the image encoder's own (its registry entry); `preprocess` may override
    settings such as `image_size` or `face_margin`. Unreachable ImageNet weights fall back to random
    init with a warning; a text encoder that cannot be loaded is an error (it decides whether the
    model understands language).
    """
    spec = text_spec(text)
    # Explicit values, so config.json documents the model fully rather than relying on defaults.
    kwargs.setdefault("labels", list(id2label.values()))
    if kwargs.get("fusion_hidden") is None:
        kwargs["fusion_hidden"] = list(DEFAULT_HIDDEN)
    kwargs["preprocess"] = image_preprocess(image, kwargs.get("preprocess")).to_dict()
    image_encoder = {"arch": image, **(image_options or {})}  # e.g. tta
    model = EmotionFusionModel(text_encoder=text_tower_config(spec), image_encoder=image_encoder, **kwargs)
    if pretrained_text:
        load_pretrained_text(model.text, spec)
    if pretrained_image:
        load_pretrained_image(model.image)
    return model
