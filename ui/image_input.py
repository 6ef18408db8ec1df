"""An image input that explains unreadable uploads instead of failing with Gradio's generic error."""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr

UNREADABLE = (
    "The file could not be read as an image (it may be corrupt, truncated or not an image). "
    "Send a JPEG, PNG, WebP, BMP or GIF file."
)


def face_image(**kwargs: Any) -> gr.Image:
    """A `gr.Image` that passes the file path on (decoded once, by `fusion.preprocess`).

    Gradio's own preprocessing opens every upload with PIL and fails with an opaque message on a
    corrupt, truncated or non-image file; this instance turns that into the message the API gives.
    (Wrapping the instance's method, not subclassing: a subclass would need its own front end.)
    """
    image = gr.Image(type="filepath", image_mode=None, **kwargs)
    original = image.preprocess

    @functools.wraps(original)
    def preprocess(payload: Any) -> Any:
        try:
            return original(payload)  # opens the header only
        except gr.Error:
            raise
        except Exception:  # noqa: BLE001 - anything PIL raises on a bad file
            raise gr.Error(UNREADABLE, print_exception=False) from None

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image
