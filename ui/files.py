"""Files the UI hands out (face crops, CSV tables): content-named, in Gradio's cache, a bounded number of them."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

from PIL import Image

from flags.store import atomic_write

MAX_FILES = 256  # per folder; the oldest are deleted first (a page fetches its file long before 256 newer ones)


class BoundedFiles:
    """Write files into `folder` (inside Gradio's cache, so Gradio serves them without copying them again).

    A file is named by its content and written once, atomically: two users who get the same crop never
    see a half-written file. Past `keep` files the least recently used go, so 1,000 faces leave at most
    `keep` files behind.
    """

    def __init__(self, folder: str | Path, keep: int = MAX_FILES):
        self.folder, self.keep = Path(folder), keep
        self._lock = threading.Lock()

    def write(self, data: bytes, suffix: str) -> str:
        path = self.folder / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        with self._lock:
            if path.exists():
                os.utime(path)  # recently used again: others go first
            else:
                self.folder.mkdir(parents=True, exist_ok=True)
                atomic_write(path, data)
                self._prune()
        return str(path)

    def write_jpeg(self, image: Image.Image | None) -> str | None:
        if image is None:
            return None
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=90)
        return self.write(buffer.getvalue(), ".jpg")

    def _prune(self) -> None:
        files = sorted((p for p in self.folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
        for stale in files[: max(0, len(files) - self.keep)]:
            stale.unlink(missing_ok=True)
