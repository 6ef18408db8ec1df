"""The late-fusion emotion model: text tower + image tower -> fused logits over the model's labels.

Two ways to fuse (`fusion` in the config):
- "concat": the towers' normalised features are concatenated and classified by a small MLP; a missing
  modality is replaced by a learned placeholder embedding (never by zero inputs).
- "logits": each branch's own head gives logits and the fused logits are their sum over the modalities
  present (log-linear pooling of calibrated branches: a product of experts); a missing modality adds nothing.
Either way, small per-branch heads say what each modality predicts on its own. A model may have one tower
only (`text_encoder` or `image_encoder` None): a branch trained alone, later combined with another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from fusion.encoders import (
    NO_ENCODER,
    TEXT_ENCODERS,
    ImageTower,
    TextTower,
    base_text_weights,
    image_preprocess,
    load_pretrained_image,
    load_pretrained_text,
    text_spec,
    text_tower_config,
)
from fusion.heads import FusionHead, ModalityEmbedding, Ngrams, text_head
from fusion.labels import NUM_LABELS, id2label
from fusion.preprocess import PreprocessCfg, load_tokenizer

DEFAULT_HIDDEN = [512]
FUSIONS = ("concat", "logits")
LEFT_OUT = "left_out_for_base"  # safetensors metadata: tensors a folder leaves out, taken from the text base
# The Hub metadata of every model folder: the mixin's own card data and the training report's card use it.
CARD_METADATA: dict[str, Any] = {
    "library_name": "emotion-fusion",
    "license": "apache-2.0",
    "pipeline_tag": "image-classification",
    "tags": ["emotion-recognition", "multimodal", "facial-expression-recognition", "text-classification"],
}


@dataclass
class FusionOutput:
    logits: torch.Tensor  # (B, num_labels) fused
    text_logits: torch.Tensor  # (B, num_labels) from the text head; rows without text are meaningless
    image_logits: torch.Tensor  # (B, num_labels) from the image head; rows without an image are meaningless
    text_present: torch.Tensor  # (B,) bool, after any modality dropout
    image_present: torch.Tensor  # (B,) bool


class EmotionFusionModel(nn.Module, PyTorchModelHubMixin, **CARD_METADATA):
    """Built from plain config only; `create_model` is the way to start from pretrained encoders, and
    `fusion.hub.load_model_folder` (or `from_pretrained`) the way to load a saved one.

    `tokenizer` is the tokenizer the model reads text with: `create_model` and loading set it, and
    `save_pretrained` / `push_to_hub` write it into the folder, so that what is saved loads back."""

    def __init__(
        self,
        text_encoder: dict[str, Any] | None,
        image_encoder: dict[str, Any] | None,
        fusion: str = "concat",
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
        text_routes: int = 1,
    ):
        super().__init__()
        self.labels = list(labels or id2label.values())
        if len(self.labels) != num_labels:
            raise ValueError(f"{num_labels} labels expected, got {self.labels}")
        if fusion not in FUSIONS:
            raise ValueError(f"Unknown fusion {fusion!r}; use one of {FUSIONS}.")
        if text_encoder is None and image_encoder is None:
            raise ValueError("A model needs a text encoder, an image encoder, or both.")
        # The stored preprocessing, over the image encoder's own (its registry entry) for what is not stored.
        self.preprocess_cfg = (
            image_preprocess(image_encoder.get("arch", "resnet18"), preprocess, stored=preprocess is not None)
            if image_encoder is not None
            else PreprocessCfg.from_dict(preprocess, stored=preprocess is not None)
        )
        self.fusion = fusion
        self.text = TextTower(**text_encoder) if text_encoder is not None else None
        self.image = ImageTower(**image_encoder, preprocess=self.preprocess_cfg) if image_encoder is not None else None
        # Logit-like features (mini-Xception) skip the LayerNorm, which would rescale their confidence.
        self.text_embed = (
            ModalityEmbedding(self.text.dim, normalize=text_norm, branched=self.text.branch is not None)
            if self.text
            else None
        )
        self.image_embed = ModalityEmbedding(self.image.dim, normalize=image_norm) if self.image else None
        # text_routes > 1: a head per kind of text and a router between them (`train.route`)
        self.text_head = (
            text_head(self.text.dim, num_labels, text_routes, self.preprocess_cfg.text_ngrams) if self.text else None
        )
        self.image_head = nn.Linear(self.image.dim, num_labels) if self.image else None
        self.head = None
        if fusion == "concat":
            dims = sum(tower.dim for tower in (self.text, self.image) if tower is not None)
            hidden = DEFAULT_HIDDEN if fusion_hidden is None else list(fusion_hidden)
            self.head = FusionHead(dims, hidden, dropout, num_labels)
        self.modality_dropout = modality_dropout
        self.temperature = temperature
        self.tokenizer: Any = None  # set by create_model and by loading; saved with the weights
        self.set_frozen(text=freeze_text, image=freeze_image)

    @property
    def config(self) -> dict[str, Any]:
        """The JSON config that rebuilds this model (config.json)."""
        return dict(getattr(self, "_hub_mixin_config", None) or {})

    def has(self, modality: str) -> bool:
        """Whether the model has a tower for "text" or "image"."""
        return getattr(self, modality) is not None

    def set_frozen(self, text: bool, image: bool) -> None:
        """Freeze or unfreeze each tower (kept in the config that `save_pretrained` writes)."""
        self.freeze_text, self.freeze_image = text, image
        for tower, frozen in ((self.text, text), (self.image, image)):
            if tower is not None:
                tower.requires_grad_(not frozen)
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

    def set_tta(self, mode: str) -> None:
        """The image tower's test-time augmentation (`fusion.encoders.TTA_MODES`), also in config.json."""
        if self.image is None:
            raise ValueError("This model has no image encoder.")
        ImageTower.check_tta(mode)
        self.image.tta = mode
        self._update_config(image_encoder={**self.config.get("image_encoder", {}), "tta": mode})

    @torch.no_grad()
    def shift_logits(self, shift: torch.Tensor) -> None:
        """Add `shift` (one value per label) to every head's logits (a logit adjustment, folded into the biases).

        With logit fusion of two branches the fused logits would get it twice: there, shift a branch alone."""
        heads = [h for h in (self.text_head, self.image_head) if h is not None]
        if self.fusion == "logits" and len(heads) > 1:
            raise ValueError("Shift a branch before combining: both branches' logits are added in logit fusion.")
        if self.head is not None:
            heads.append(self.head.mlp[-1])
        for head in heads:  # a RoutedHead's bias is one row per route: the shift reaches each alike
            head.bias.add_(shift.to(head.bias))

    def train(self, mode: bool = True) -> EmotionFusionModel:
        """Frozen towers stay in eval mode, so BatchNorm statistics and dropout never change them."""
        super().train(mode)
        if self.freeze_text and self.text is not None:
            self.text.eval()
        if self.freeze_image and self.image is not None:
            self.image.eval()
        return self

    # -- seams used by the predictor, the feature cache and the benchmarks --------------------

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.text is None:
            raise ValueError("This model has no text encoder: it reads faces only.")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_text):
            return self.text(input_ids, attention_mask)

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.image is None:
            raise ValueError("This model has no image encoder: it reads texts only.")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_image):
            return self.image(pixel_values)

    @torch.no_grad()
    def image_branch_logits(self, pixel_values: torch.Tensor, tta: str | None = None) -> torch.Tensor:
        """The image head's logits for a batch of faces, with `tta` in place of the tower's own (explanations
        score many occluded variants of one face: one view each keeps them quick)."""
        feats = self.image(pixel_values, tta=tta)
        return self.image_head(self.image_embed(feats, torch.ones(len(feats), dtype=torch.bool, device=feats.device)))

    def forward_head(
        self,
        text_feats: torch.Tensor | None,
        image_feats: torch.Tensor | None,
        text_present: torch.Tensor,
        image_present: torch.Tensor,
        text_ngrams: Ngrams | None = None,
    ) -> FusionOutput:
        embedded, branch = [], {}
        for name, feats, present in (("text", text_feats, text_present), ("image", image_feats, image_present)):
            embed, head = getattr(self, f"{name}_embed"), getattr(self, f"{name}_head")
            if embed is None:  # no tower: this modality is never present
                branch[name] = torch.zeros(len(present), len(self.labels), device=present.device)
                continue
            e = embed(feats, present)
            embedded.append(e)
            branch[name] = head(e, text_ngrams) if name == "text" and text_ngrams is not None else head(e)
        if self.fusion == "logits":  # a missing modality contributes nothing
            logits = branch["text"] * text_present.unsqueeze(1) + branch["image"] * image_present.unsqueeze(1)
        else:
            logits = self.head(torch.cat(embedded, dim=1))
        return FusionOutput(
            logits=logits,
            text_logits=branch["text"],
            image_logits=branch["image"],
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
        text_ngrams: torch.Tensor | None = None,
        text_ngram_weights: torch.Tensor | None = None,
    ) -> FusionOutput:
        """Raw inputs, or precomputed encoder features (`text_feats`/`image_feats`, the training cache);
        `text_ngrams` and their weights for a router that reads them (the Preprocessor makes them)."""
        batch = _batch_size(pixel_values, input_ids, text_feats, image_feats)
        device = (self.text_embed or self.image_embed).placeholder.device  # plain (int8 Linear weights are methods)
        image_present = _presence(image_present, pixel_values if image_feats is None else image_feats, batch, device)
        text_present = _presence(text_present, input_ids if text_feats is None else text_feats, batch, device)
        if self.text is None and bool(text_present.any()) or self.image is None and bool(image_present.any()):
            missing = "text" if self.text is None else "image"
            raise ValueError(f"This model has no {missing} encoder; send only what it reads.")
        if self.training and self.modality_dropout > 0:
            text_present, image_present = self._drop_modalities(text_present, image_present)
        if text_feats is None:
            text_feats = encode_rows(self.encode_text, text_present, input_ids, attention_mask)
        if image_feats is None:
            image_feats = encode_rows(self.encode_image, image_present, pixel_values)
        ngrams = None
        if self.preprocess_cfg.text_ngrams:  # the text head's router reads them (none needed where no text is)
            if text_ngrams is None and not bool(text_present.any()):
                text_ngrams = torch.zeros(batch, 1, dtype=torch.long, device=device)
                text_ngram_weights = text_ngrams.float()
            ngrams = (text_ngrams, text_ngram_weights) if text_ngrams is not None else None
        return self.forward_head(text_feats, image_feats, text_present, image_present, ngrams)

    # -- saving: the folder every loader reads (the same writer as training's) ---------------------

    def save_pretrained(self, save_directory: str | Path, *, tokenizer: Any = None, config: Any = None,
                        **kwargs: Any) -> str | None:  # fmt: skip
        """Write a complete model folder: config.json (with the preprocessing), model.safetensors, the
        tokenizer and a card, which `EmotionPredictor.load` loads back and answers the same from.

        `tokenizer` replaces the model's own (and is kept for later saves); without either it is an error.
        `config` may only repeat the model's own: config.json is always what rebuilds these weights.
        Other arguments as the Hub mixin's (`push_to_hub=True`, `repo_id`, ...)."""
        if config is not None and dict(config) != self.config:
            raise ValueError("config.json is the model's own config; build a model from the other config instead.")
        if tokenizer is not None:
            self.tokenizer = tokenizer
        return super().save_pretrained(save_directory, **kwargs)

    def push_to_hub(self, repo_id: str, *, tokenizer: Any = None, **kwargs: Any) -> str:
        """Upload the folder `save_pretrained` writes, in one commit (other arguments as the Hub mixin's)."""
        if tokenizer is not None:
            self.tokenizer = tokenizer
        return super().push_to_hub(repo_id, **kwargs)

    def _save_pretrained(self, save_directory: Path) -> None:
        from fusion.save import save_model_folder

        save_model_folder(self, self.tokenizer, save_directory)

    # -- loading: strict, with the weights a folder leaves out taken from the text encoder's base -----

    def load_weights(self, path: str | Path) -> None:
        """Load a safetensors file strictly. A saved folder may leave out text-encoder tensors that training
        never changed (the packaged word embeddings); they come from the encoder's `base` (config.json)."""
        import json

        from safetensors import safe_open
        from safetensors.torch import load_file

        state = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            left_out = json.loads((handle.metadata() or {}).get(LEFT_OUT) or "[]")
        prefix = "text.model."
        if left_out and self.text is not None and self.text.base:
            from_base = [k[len(prefix) :] for k in left_out if k.startswith(prefix)]
            state.update({prefix + k: v for k, v in base_text_weights(self.text.base, from_base).items()})
        expected = self.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        if missing or unexpected:
            raise ValueError(
                f"{Path(path).name} does not fit its config.json: {len(missing)} tensor(s) missing {missing[:3]}, "
                f"{len(unexpected)} unexpected {unexpected[:3]}."
            )
        self.load_state_dict(state, strict=True)  # copies into the parameters' own dtype (fp16 files -> fp32)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision, cache_dir, force_download, local_files_only, token,
                         map_location: str = "cpu", strict: bool = True, **model_kwargs):  # fmt: skip
        """`from_pretrained` for a folder or Hub repo: strict safetensors loading (see `load_weights`), and the
        folder's tokenizer (None when it has none)."""
        folder = Path(model_id)
        if not folder.is_dir():
            from huggingface_hub import snapshot_download

            from fusion.hub import NESTED, SERVE_PATTERNS

            folder = Path(snapshot_download(model_id, revision=revision, cache_dir=cache_dir, token=token,
                                            force_download=force_download, local_files_only=local_files_only,
                                            allow_patterns=SERVE_PATTERNS, ignore_patterns=NESTED))  # fmt: skip
        model = cls(**model_kwargs)
        model.load_weights(folder / "model.safetensors")
        if (folder / "tokenizer_config.json").is_file():
            from fusion.preprocess import load_tokenizer

            model.tokenizer = load_tokenizer(folder)
        return model.to(map_location).eval()

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
    text: str | None = "minilm-l6",
    image: str | None = "resnet18",
    pretrained_text: bool = True,
    pretrained_image: bool = True,
    image_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> EmotionFusionModel:
    """Build a model from named (or Hub/local) encoders and load their pretrained weights; None (or "none")
    leaves a tower out.

    The preprocessing is the image encoder's own (its registry entry); `preprocess` may override
    settings such as `image_size` or `face_margin`. Unreachable ImageNet weights fall back to random
    init with a warning; a text encoder that cannot be loaded is an error (it decides whether the
    model understands language).
    """
    text, image = (None if name in (None, NO_ENCODER) else name for name in (text, image))
    spec = text_spec(text) if text else None
    # Explicit values, so config.json documents the model fully rather than relying on defaults.
    kwargs.setdefault("labels", list(id2label.values()))
    kwargs["num_labels"] = len(kwargs["labels"])
    if kwargs.get("fusion_hidden") is None:
        kwargs["fusion_hidden"] = list(DEFAULT_HIDDEN)
    overrides = kwargs.get("preprocess")
    kwargs["preprocess"] = (
        image_preprocess(image, overrides) if image else PreprocessCfg.from_dict(overrides)
    ).to_dict()
    text_encoder = text_tower_config(spec) if spec else None
    if text_encoder is not None and text in TEXT_ENCODERS:
        text_encoder["base"] = text  # where weights a saved folder leaves out (unchanged ones) come from
    image_encoder = {"arch": image, **(image_options or {})} if image else None  # options: e.g. tta
    model = EmotionFusionModel(text_encoder=text_encoder, image_encoder=image_encoder, **kwargs)
    # A text-free model still gets a tokenizer (the packaged MiniLM's): every folder loads the same way.
    model.tokenizer = load_tokenizer((spec or text_spec("minilm-l6")).resolve_tokenizer())
    if pretrained_text and spec:
        load_pretrained_text(model.text, spec)
    if pretrained_image and image:
        load_pretrained_image(model.image)
    return model
