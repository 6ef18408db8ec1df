"""The one preprocessing path, shared by training and serving.

Images: decode -> EXIF orientation -> RGB -> face crop -> colour mode -> resize -> normalisation.
Text: tokenizer, truncation at `max_text_tokens`, padding only to the longest text in the batch.
Everything is built from `PreprocessCfg`: the image encoder's registry entry says what input it wants
(`fusion.encoders`), `create_model` copies that into the model's config, and config.json saves it.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms import v2

from fusion.augment import train_augmentation
from fusion.faces import MAX_FACES, FaceCrop, crop_face, crop_faces, detector_in_use
from fusion.ngrams import ngram_batch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
COLOR_MODES = {"RGB": 3, "L": 1}  # PIL mode -> channels
# ITU-R BT.601 luma, as PIL's "L" conversion and OpenCV's COLOR_BGR2GRAY.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}
MAX_TEXT_CHARS = 2000  # the longest text the app accepts and a flag keeps (one limit everywhere)

ImageInput = Image.Image | np.ndarray | bytes | str | Path


# What a saved folder without these settings was served with: the Haar cascade, no turning, no equalisation.
SAVED_BEFORE: dict[str, Any] = {"detector": "haar", "align": False, "equalize": False}


class InvalidImageError(ValueError):
    """The image could not be read; the message says why and what to send instead."""


@dataclass(frozen=True)
class PreprocessCfg:
    """What the model's input is: face crop (margin), colour mode, side, normalisation; text length."""

    image_size: int = 224
    color_mode: str = "RGB"  # "RGB" or "L" (8-bit gray, BT.601 luma)
    mean: tuple[float, ...] = IMAGENET_MEAN  # one value per channel
    std: tuple[float, ...] = IMAGENET_STD
    detect_faces: bool = True
    face_margin: float = 0.25
    max_text_tokens: int = 128
    max_image_pixels: int = 50_000_000
    detector: str = "yunet"  # "yunet" (landmarks) or "haar" (`fusion.faces`)
    align: bool = True  # turn each face crop so the eyes are level
    equalize: bool = False  # histogram-equalise the crop (one photometric style for every camera)
    text_ngrams: int = 0  # > 0: the text head's router also reads hashed character n-grams (`fusion.ngrams`)

    def __post_init__(self) -> None:
        channels = COLOR_MODES.get(self.color_mode)
        if channels is None:
            raise ValueError(f"Unknown colour mode {self.color_mode!r}; use one of {sorted(COLOR_MODES)}.")
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"Colour mode {self.color_mode} needs {channels} mean/std value(s).")

    @property
    def channels(self) -> int:
        return COLOR_MODES[self.color_mode]

    @classmethod
    def from_dict(
        cls, data: dict[str, Any] | None, base: dict[str, Any] | None = None, stored: bool = False
    ) -> PreprocessCfg:
        """`data` over `base` (an encoder's own settings). Without a colour mode, the number of
        mean values names it (folders saved before colour modes existed were RGB). A `stored` config (a
        saved folder's) that predates a setting keeps what that folder was served with (`SAVED_BEFORE`)."""
        data = {k: v for k, v in (data or {}).items() if not (k == "extra" and not v)}  # an old, unused field
        if stored:
            data = {**SAVED_BEFORE, **data}
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"Unknown preprocessing settings: {sorted(unknown)}")
        if "mean" in data and "color_mode" not in data:
            data["color_mode"] = "L" if len(data["mean"]) == 1 else "RGB"
        merged = {**(base or {}), **data}
        for key in ("mean", "std"):
            if key in merged:
                merged[key] = tuple(float(v) for v in merged[key])
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    def same_pixels(self, other: PreprocessCfg) -> bool:
        """True when both produce the same image tensors."""
        keys = ("image_size", "color_mode", "mean", "std")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


def load_image(source: ImageInput, max_pixels: int = PreprocessCfg.max_image_pixels) -> Image.Image:
    """Decode any supported input into an upright RGB PIL image, or raise `InvalidImageError`."""
    try:
        if isinstance(source, Image.Image):
            image = source
        elif isinstance(source, np.ndarray):
            image = Image.fromarray(source)
        elif isinstance(source, (bytes, bytearray)):
            image = _open(io.BytesIO(source), max_pixels)
        elif isinstance(source, (str, Path)):
            if not Path(source).is_file():
                raise InvalidImageError(f"Image file not found: {Path(source).name}. Check the path.")
            image = _open(source, max_pixels)
        else:
            raise InvalidImageError(
                f"Unsupported image input of type {type(source).__name__}; "
                "send a PIL image, a numpy array, image bytes or a file path."
            )
        if image.width * image.height > max_pixels:
            raise InvalidImageError(_too_large(image.width, image.height, max_pixels))
        if image.width < 1 or image.height < 1:
            raise InvalidImageError("The image is empty (0 pixels); send a real photo.")
        image.load()
    except InvalidImageError:
        raise
    except Image.DecompressionBombError:
        raise InvalidImageError(
            "The image has too many pixels to process safely; resize it below 50 megapixels."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, EOFError) as err:
        raise InvalidImageError(
            "The file could not be read as an image (it may be corrupt, truncated or not an image). "
            "Send a JPEG, PNG, WebP, BMP or GIF file."
        ) from err
    return to_rgb(_upright(image))


def _open(fp: Any, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(fp)
        except Image.DecompressionBombWarning:
            raise Image.DecompressionBombError("too many pixels") from None
    if image.width * image.height > max_pixels:
        raise InvalidImageError(_too_large(image.width, image.height, max_pixels))
    return image


def _too_large(width: int, height: int, max_pixels: int) -> str:
    return (
        f"The image is {width}x{height} pixels, more than the {max_pixels // 1_000_000} megapixel limit; "
        "resize it and try again."
    )


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block is ignored rather than failing the image."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - malformed EXIF must not reject an otherwise fine photo
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparent areas become white."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT or image.mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float32)
        if image.mode in _SIXTEEN_BIT:
            array = array / 257.0
        elif array.size and array.max() > 255:  # 32-bit data of unknown range: stretch to 8-bit
            low, high = float(array.min()), float(array.max())
            array = (array - low) * (255.0 / max(high - low, 1e-6))
        return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "L").convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def image_transform(
    cfg: PreprocessCfg, is_train: bool = False, erasing: float = 0.0, augment: str = "basic", surround: str = "keep"
) -> v2.Compose:
    """PIL RGB face crop -> normalised float tensor (channels, size, size); augmentation for training
    (`fusion.augment`: `augment` and `surround`; with probability `erasing`, a random patch is blanked too: faces
    are often partly hidden).

    With `cfg.equalize` the crop is histogram-equalised after any augmentation, in training and serving
    alike: every camera's crop reaches the network in one photometric style. An image already at the
    model's size is not resampled (a 48 px face crop reaches a 48 px model as is).
    """
    size = cfg.image_size
    colour = [v2.Grayscale(num_output_channels=1)] if cfg.color_mode == "L" else []  # PIL's own "L" conversion
    geometry = (
        train_augmentation(size, cfg.channels, augment, surround)
        if is_train
        else [v2.Resize((size, size), antialias=True)]
    )
    equalize = [v2.RandomEqualize(p=1.0)] if cfg.equalize else []
    erase = [v2.RandomErasing(p=erasing, scale=(0.02, 0.2), value=0.0)] if is_train and erasing > 0 else []
    return v2.Compose(
        [
            *colour,
            v2.ToImage(),
            *geometry,
            *equalize,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(cfg.mean, cfg.std),
            *erase,
        ]
    )


def convert_batch(pixels: torch.Tensor, source: PreprocessCfg, target: PreprocessCfg) -> torch.Tensor:
    """Image tensors made by `source`'s transform -> what `target`'s would give (up to resampling).

    Only for model folders whose stored preprocessing predates their encoder's own (RGB, 224 px,
    ImageNet-normalised for every encoder): the encoder still gets the input it was trained on.
    """
    x = pixels.float()
    x = (x * _per_channel(source.std, x) + _per_channel(source.mean, x)).clamp(0.0, 1.0)
    if source.channels == 3 and target.channels == 1:
        x = (x * _per_channel(LUMA_WEIGHTS, x)).sum(dim=1, keepdim=True)
    elif source.channels == 1 and target.channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (target.image_size, target.image_size):
        size = (target.image_size, target.image_size)
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return (x - _per_channel(target.mean, x)) / _per_channel(target.std, x)


def _per_channel(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def load_tokenizer(path: str | Path):
    """The tokenizer saved beside a model (never remote code)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)


class Preprocessor:
    """Turns raw (image, text) pairs into model inputs; the same object serves training and inference."""

    def __init__(
        self,
        cfg: PreprocessCfg,
        tokenizer: Any,
        is_train: bool = False,
        erasing: float = 0.0,
        augment: str = "basic",
        surround: str = "keep",
    ):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.transform = image_transform(cfg, is_train, erasing, augment, surround)
        self.crop = {
            "margin": cfg.face_margin,
            "detect": cfg.detect_faces,
            "detector": cfg.detector,
            "align": cfg.align,
        }

    @property
    def detector(self) -> str | None:
        """The face detector that runs ("yunet" or "haar", `fusion.faces.detector_in_use`); None: no detection."""
        return detector_in_use(self.cfg.detector) if self.cfg.detect_faces else None

    def face(self, source: ImageInput) -> FaceCrop:
        """The largest face, or the centre (training reads every image this way)."""
        return crop_face(load_image(source, self.cfg.max_image_pixels), **self.crop)

    def faces(self, source: ImageInput, limit: int = MAX_FACES) -> list[FaceCrop]:
        """Every face, largest first (serving scores each of them); [] when none is found."""
        return crop_faces(load_image(source, self.cfg.max_image_pixels), limit=limit, **self.crop)

    def image_tensor(self, face: FaceCrop) -> torch.Tensor:
        return self.transform(face.image)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        # Only the first `max_text_tokens` tokens are kept anyway; cutting the characters first keeps
        # a megabyte-long text from costing seconds in the tokenizer (100 chars per token is generous).
        limit = self.cfg.max_text_tokens * 100
        encoded = self.tokenizer(
            [text[:limit] for text in texts],
            truncation=True,
            max_length=self.cfg.max_text_tokens,
            padding="longest",
            return_tensors="pt",
        )
        batch = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        if self.cfg.text_ngrams:
            batch.update(ngram_batch(texts, self.cfg.text_ngrams))
        return batch

    def collate(
        self, images: Sequence[torch.Tensor | None], texts: Sequence[str | None]
    ) -> dict[str, torch.Tensor | None]:
        """Batch image tensors (from `image_tensor`) and texts; None (or a blank text) marks a missing modality."""
        if len(images) != len(texts):
            raise ValueError(f"Got {len(images)} images but {len(texts)} texts; pass one of each per sample.")
        image_present = torch.tensor([i is not None for i in images], dtype=torch.bool)
        text_present = torch.tensor([bool(t and t.strip()) for t in texts], dtype=torch.bool)
        batch: dict[str, torch.Tensor | None] = {
            "image_present": image_present,
            "text_present": text_present,
            "pixel_values": None,
            "input_ids": None,
            "attention_mask": None,
        }
        if image_present.any():
            # Rows without an image never reach the encoder (the model selects rows by the mask).
            blank = torch.zeros_like(next(i for i in images if i is not None))
            batch["pixel_values"] = torch.stack([i if i is not None else blank for i in images])
        if text_present.any():
            batch.update(self.tokenize([t if t and t.strip() else "" for t in texts]))
        return batch
