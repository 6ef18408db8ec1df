import io

import numpy as np
import pytest
import torch
from PIL import Image

from fusion.faces import crop_face
from fusion.preprocess import InvalidImageError, PreprocessCfg, Preprocessor, load_image
from tests.conftest import ASTRONAUT


def _png_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _mode_images() -> dict[str, Image.Image]:
    gray = Image.linear_gradient("L").resize((40, 30))
    return {
        "L": gray,
        "LA": Image.merge("LA", [gray, Image.new("L", gray.size, 255)]),
        "P": Image.new("RGB", (40, 30), (200, 30, 30)).convert("P", palette=Image.Palette.ADAPTIVE),
        "RGBA": Image.new("RGBA", (40, 30), (10, 200, 10, 255)),
        "CMYK": Image.new("CMYK", (40, 30), (0, 255, 255, 0)),
        "I;16": Image.fromarray(np.full((30, 40), 65535, dtype=np.uint16)),
    }


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16"])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_every_mode_becomes_rgb(mode, as_bytes):
    image = _mode_images()[mode]
    assert image.mode == mode
    source = _png_bytes(image, "TIFF" if mode == "CMYK" else "PNG") if as_bytes else image
    rgb = load_image(source)
    assert rgb.mode == "RGB" and rgb.size == (40, 30)


def test_mode_conversion_keeps_colours():
    images = _mode_images()
    assert load_image(images["I;16"]).getpixel((0, 0)) == (255, 255, 255)  # 16-bit full scale -> 8-bit full scale
    assert load_image(images["CMYK"]).getpixel((0, 0)) == (255, 0, 0)
    r, g, b = load_image(images["P"]).getpixel((0, 0))
    assert r > 150 and g < 80 and b < 80


def test_transparent_pixels_become_white():
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert load_image(clear).getpixel((3, 3)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    # Stored 200x100, left half red; orientation 6 means "rotate 90 degrees clockwise to display".
    stored = Image.new("RGB", (200, 100), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 100, 100))
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = load_image(_png_bytes(stored, "JPEG", exif=exif.tobytes(), quality=95))
    assert upright.size == (100, 200)
    top = upright.getpixel((50, 20))
    bottom = upright.getpixel((50, 180))
    assert top[0] > 200 and top[2] < 60  # red, which was on the left, is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_broken_exif_does_not_reject_the_photo():
    exif = Image.Exif()
    exif[0x0112] = 99  # no such orientation
    image = load_image(_png_bytes(Image.new("RGB", (30, 20), (5, 5, 5)), "JPEG", exif=exif.tobytes()))
    assert image.size == (30, 20)


@pytest.mark.parametrize(
    "payload",
    [b"", b"not an image at all", _png_bytes(Image.new("RGB", (64, 64)))[:60], b"\x89PNG\r\n\x1a\n" + b"0" * 50],
)
def test_unreadable_bytes_get_a_clear_error(payload):
    with pytest.raises(InvalidImageError, match="could not be read as an image"):
        load_image(payload)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InvalidImageError, match="not found: nope.png"):
        load_image(tmp_path / "nope.png")


def test_decompression_bomb_is_refused_before_decoding():
    bomb = _png_bytes(Image.new("L", (9000, 9000)))  # 81 megapixels, a tiny file
    with pytest.raises(InvalidImageError, match="megapixel"):
        load_image(bomb)


def test_wrong_input_type_is_named():
    with pytest.raises(InvalidImageError, match="int"):
        load_image(42)  # type: ignore[arg-type]


def test_real_face_is_found_and_cropped_square():
    photo = load_image(ASTRONAUT)
    crop = crop_face(photo)
    x0, y0, x1, y1 = crop.box
    assert crop.face_found
    assert x1 - x0 == y1 - y0 and crop.image.size == (x1 - x0, y1 - y0)
    # The astronaut's face sits a little left of centre in the upper half (a weak detection on her
    # suit, right of centre, must lose to it).
    cx, cy = (x0 + x1) / 2 / photo.width, (y0 + y1) / 2 / photo.height
    assert 0.35 < cx < 0.5 and 0.15 < cy < 0.35
    assert (x1 - x0) < 0.6 * photo.width  # a face crop, not the whole frame


def test_no_face_falls_back_to_centre_square_with_flag():
    crop = crop_face(Image.new("RGB", (300, 200), (90, 140, 200)))
    assert not crop.face_found
    assert crop.box == (50, 0, 250, 200)


def test_a_small_square_image_is_a_face_crop_already():
    """FER2013-style tight crops: detectors miss most (cut-off chin and forehead); the whole image is the face."""
    tight = Image.new("RGB", (48, 48), (120, 100, 90))
    crop = crop_face(tight)
    assert crop.face_found and crop.box == (0, 0, 48, 48) and crop.image.size == (48, 48)
    assert crop_face(Image.new("RGB", (100, 90), (1, 2, 3))).box == (5, 0, 95, 90)  # about square: centred square
    assert not crop_face(Image.new("RGB", (120, 40), (1, 2, 3))).face_found  # a small banner is no face crop
    assert not crop_face(Image.new("RGB", (300, 300), (1, 2, 3))).face_found  # large: only a detection counts
    assert not crop_face(tight, detect=False).face_found
    assert not crop_face(Image.new("RGB", (8, 8), (1, 2, 3))).face_found  # an icon is no face crop


def test_detection_can_be_switched_off():
    crop = crop_face(load_image(ASTRONAUT), detect=False)
    assert not crop.face_found and crop.box == (0, 0, 320, 320)


def test_image_tensor_is_normalised_224(tokenizer):
    prep = Preprocessor(PreprocessCfg(), tokenizer)
    tensor = prep.image_tensor(prep.face(ASTRONAUT))
    assert tensor.shape == (3, 224, 224) and tensor.dtype == torch.float32
    white = prep.image_tensor(crop_face(Image.new("RGB", (50, 50), (255, 255, 255)), detect=False))
    expected = (1 - torch.tensor(PreprocessCfg().mean)) / torch.tensor(PreprocessCfg().std)
    assert torch.allclose(white[:, 0, 0], expected, atol=1e-4)


def test_train_transform_augments_eval_does_not(tokenizer):
    face = crop_face(load_image(ASTRONAUT))
    evaluation = Preprocessor(PreprocessCfg(), tokenizer, is_train=False)
    assert torch.equal(evaluation.image_tensor(face), evaluation.image_tensor(face))
    training = Preprocessor(PreprocessCfg(), tokenizer, is_train=True)
    torch.manual_seed(0)
    assert not torch.equal(training.image_tensor(face), training.image_tensor(face))


def test_text_padding_is_dynamic_and_truncated(tokenizer):
    prep = Preprocessor(PreprocessCfg(), tokenizer)
    short = prep.tokenize(["I am happy", "so so so happy today"])
    lengths = short["attention_mask"].sum(1).tolist()
    assert short["input_ids"].shape[1] == max(lengths) < 16  # padded to the longest, not to 128
    assert lengths[0] < lengths[1]
    long = prep.tokenize(["word " * 2_000_000])  # 10 MB: cut before tokenizing, so this is instant
    assert long["input_ids"].shape == (1, 128)


def test_collate_marks_missing_modalities(tokenizer):
    prep = Preprocessor(PreprocessCfg(), tokenizer)
    face = prep.image_tensor(prep.face(ASTRONAUT))
    batch = prep.collate([face, None, face], ["hello there", "only text", "  "])
    assert batch["image_present"].tolist() == [True, False, True]
    assert batch["text_present"].tolist() == [True, True, False]
    assert batch["pixel_values"].shape == (3, 3, 224, 224)
    assert batch["input_ids"].shape[0] == 3
    text_only = prep.collate([None], ["hi"])
    assert text_only["pixel_values"] is None and text_only["image_present"].tolist() == [False]
    with pytest.raises(ValueError, match="1 images but 2 texts"):
        prep.collate([face], ["a", "b"])


def test_preprocess_cfg_round_trip_and_unknown_keys():
    cfg = PreprocessCfg(image_size=160, face_margin=0.1)
    assert PreprocessCfg.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="imge_size"):
        PreprocessCfg.from_dict({"imge_size": 3})


def test_random_erasing_blanks_a_patch_in_training_only():
    cfg = PreprocessCfg(image_size=48, color_mode="L", mean=(0.5,), std=(0.25,))
    face = Image.new("RGB", (48, 48), (200, 200, 200))  # never 0 once normalised (rotated-in corners are -2)
    torch.manual_seed(0)
    erased = Preprocessor(cfg, None, is_train=True, erasing=1.0).transform(face)
    assert 0.02 <= (erased == 0).float().mean() <= 0.2  # one patch of 2-20% of the face
    plain = Preprocessor(cfg, None, is_train=False, erasing=1.0).transform(face)
    assert (plain != 0).all()  # never at inference
