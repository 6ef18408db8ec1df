"""Flagging for relabeling: a `gr.FlaggingCallback` over the durable, private flag store, rate-limited per session.

Wired the way Gradio documents for Blocks: `setup()` once, then the Flag button calls `flag()` with the
components' raw values (`preprocess=False`): the uploaded image arrives as Gradio's file payload.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import gradio as gr

from flags.store import FlagStore
from fusion.preprocess import load_image

FLAGS_PER_SESSION = 10  # a visitor flags a few wrong answers; a script posting hundreds is refused
PER_SECONDS = 600.0


class RateLimit:
    """At most `limit` events per key in any `window` seconds; memory stays bounded by active keys."""

    def __init__(self, limit: int = FLAGS_PER_SESSION, window: float = PER_SECONDS):
        self.limit, self.window = limit, window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            for stale in [k for k, q in self._events.items() if q and now - q[-1] > self.window]:
                del self._events[stale]
            events = self._events.setdefault(key, deque())
            while events and now - events[0] > self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True


class FlagStoreCallback(gr.FlaggingCallback):
    """flag_data = [image (Gradio's file payload, a path or None), text, details (the prediction JSON), corrected label]."""

    def __init__(self, store: FlagStore, model: str, revision: str | None = None):
        self.store, self.model, self.revision = store, model, revision

    def setup(self, components: Sequence[gr.components.Component], flagging_dir: str) -> None:
        if str(flagging_dir) != str(self.store.root):
            raise ValueError(f"This callback writes to {self.store.root}, not {flagging_dir}.")

    def flag(self, flag_data: list[Any], flag_option: str | None = None, username: str | None = None) -> int:
        """Store one flag; returns how many flags the store holds. Bad input raises `ValueError`."""
        image, text, details, corrected = flag_data
        details = details or {}
        self.store.add(
            corrected=corrected,
            text=text,
            image=load_image(_path(image)) if image else None,
            predicted=details.get("label"),
            probabilities=details.get("probabilities"),
            model=self.model,
            revision=self.revision,
        )
        return self.store.count()


def _path(payload: Any) -> str:
    """The server-side file of an image component's raw value (a FileData dict, or already a path)."""
    return payload.get("path") if isinstance(payload, dict) else str(payload)
