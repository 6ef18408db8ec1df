"""Flagging for relabeling: a `gr.FlaggingCallback` that writes to our durable, private flag store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr

from flags.store import FlagRecord, FlagStore


class FlagStoreCallback(gr.FlaggingCallback):
    """flag_data = [image (PIL or None), text, details (the prediction JSON), corrected label]."""

    def __init__(self, model: str, revision: str | None = None):
        self.model, self.revision = model, revision
        self.store: FlagStore | None = None

    def setup(self, components: Sequence[gr.components.Component], flagging_dir: str) -> None:
        self.components = list(components)
        self.store = FlagStore(flagging_dir)

    def flag(self, flag_data: list[Any], flag_option: str | None = None, username: str | None = None) -> int:
        self.save(*flag_data)
        return sum(1 for _ in self.store.records_dir.glob("*.json")) if self.store else 0  # no parsing

    def save(self, image: Any, text: str | None, details: dict[str, Any] | None, corrected: str) -> FlagRecord:
        if self.store is None:
            raise RuntimeError("FlagStoreCallback.setup() was not called.")
        details = details or {}
        return self.store.add(
            corrected=corrected,
            text=text,
            image=image,
            predicted=details.get("label"),
            probabilities=details.get("probabilities"),
            model=self.model,
            revision=self.revision,
        )
