"""The flag store: wrong predictions with their corrected label, kept durably for relabeling and retraining.

Layout (one folder, never served publicly):
    records/<id>.json   one flag: text, predicted label + probabilities, corrected label, model, time, review
    images/<id>.png     the image the user sent, if any
Each file is written to a temporary name and renamed into place (atomic on POSIX), so concurrent
writers never collide (ids are unique) and a process killed mid-write leaves at most a stray temp
file, which readers ignore. A review rewrites its record the same way.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from fusion.labels import EMOTIONS, parse_label
from fusion.preprocess import MAX_TEXT_CHARS

MAX_FLAGS = 20_000  # a public Space must not fill its disk with flags; past this, new flags are refused


class FlagStoreError(OSError):
    """The store could not be written (full disk, no permission); the message says what to check."""


class FlagStoreFullError(FlagStoreError):
    """The store holds `max_flags` flags: nothing is deleted, new flags are refused until maintainers act."""


@dataclass
class FlagRecord:
    id: str
    time: str
    text: str
    image: str | None  # file name under images/
    predicted: str | None
    probabilities: dict[str, float]
    corrected: str
    model: str
    revision: str | None
    review: dict[str, Any] | None = None  # {"label": ..., "status": "confirmed"|"changed", "time": ...}
    updated: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The label to train on: the maintainer's review if any, else the user's correction."""
        return self.review["label"] if self.review else self.corrected


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


TMP_PREFIX = ".tmp-"  # atomic_write's temporary files: never read as records


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FlagStore:
    def __init__(self, root: str | Path, max_flags: int = MAX_FLAGS):
        self.root = Path(root)
        self.records_dir = self.root / "records"
        self.images_dir = self.root / "images"
        self.max_flags = max_flags
        self._review_lock = threading.Lock()

    def count(self) -> int:
        return len(self._record_files())

    def _record_files(self) -> list[Path]:
        """The record files, without the temporary files a write killed before its rename leaves behind."""
        if not self.records_dir.is_dir():
            return []
        return sorted(p for p in self.records_dir.glob("*.json") if not p.name.startswith(TMP_PREFIX))

    def _ensure(self) -> None:
        try:
            self.records_dir.mkdir(parents=True, exist_ok=True)
            self.images_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FlagStoreError(f"Cannot create the flag folder {self.root}: {err.strerror}.") from None

    def add(
        self,
        *,
        corrected: str,
        text: str | None = None,
        image: Image.Image | None = None,
        predicted: str | None = None,
        probabilities: dict[str, float] | None = None,
        model: str = "",
        revision: str | None = None,
    ) -> FlagRecord:
        """Store one flag durably; raises `ValueError` for bad input and `FlagStoreError` when it cannot write."""
        label = EMOTIONS[parse_label(corrected)]
        text = (text or "").strip()[:MAX_TEXT_CHARS]
        if image is None and not text:
            raise ValueError("Nothing to flag: the flag needs the image or the text that was predicted.")
        if self.count() >= self.max_flags:
            raise FlagStoreFullError(
                f"The flag store is full ({self.max_flags:,} flags); maintainers must review and retrain first. "
                "Thank you for trying: your prediction is unaffected."
            )
        self._ensure()
        record_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        now = _now()
        record = FlagRecord(
            id=record_id,
            time=now,
            text=text,
            image=f"{record_id}.png" if image is not None else None,
            predicted=predicted,
            probabilities={k: round(float(v), 6) for k, v in (probabilities or {}).items()},
            corrected=label,
            model=model,
            revision=revision,
            updated=now,
        )
        return self.put(record, _png_bytes(image) if image is not None else None)

    def put(self, record: FlagRecord, image_png: bytes | None = None) -> FlagRecord:
        """Write a complete record (and its PNG image) as is: new flags, and flags restored from the Hub."""
        self._ensure()
        try:
            if image_png is not None and record.image:  # the image first: a record never points at a missing image
                atomic_write(self.images_dir / record.image, image_png)
            atomic_write(self._record_path(record.id), json.dumps(asdict(record)).encode())
        except OSError as err:
            raise FlagStoreError(f"Could not save the flag in {self.root}: {err.strerror or err}.") from None
        return record

    def records(self) -> list[FlagRecord]:
        """All complete records, oldest first (unreadable files are skipped, never fatal)."""
        found = []
        for path in self._record_files():
            try:
                found.append(FlagRecord(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(found, key=lambda r: (r.time, r.id))

    def get(self, record_id: str) -> FlagRecord:
        path = self._record_path(record_id)
        try:
            return FlagRecord(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise KeyError(f"No flag with id {record_id!r}.") from None

    def review(self, record_id: str, label: str) -> FlagRecord:
        """A maintainer confirms or changes a flag's label."""
        final = EMOTIONS[parse_label(label)]
        with self._review_lock:
            record = self.get(record_id)
            record.review = {
                "label": final,
                "status": "confirmed" if final == record.corrected else "changed",
                "time": _now(),
            }
            record.updated = record.review["time"]
            try:
                atomic_write(self._record_path(record_id), json.dumps(asdict(record)).encode())
            except OSError as err:
                raise FlagStoreError(f"Could not save the review in {self.root}: {err.strerror or err}.") from None
        return record

    def image_path(self, record: FlagRecord) -> Path | None:
        return self.images_dir / record.image if record.image else None

    def training_rows(self, include_unreviewed: bool = False) -> tuple[list[dict[str, Any]], int]:
        """(rows for `train.data`, flags left out): image path, text, and the label to train on.

        Only flags a maintainer reviewed (the review's label wins) unless `include_unreviewed`,
        which adds visitors' own corrections as they are.
        """
        records = self.records()
        used = [r for r in records if r.review or include_unreviewed]
        rows = [{"image": self.image_path(r), "text": r.text, "label": r.label} for r in used]
        return rows, len(records) - len(used)

    def _record_path(self, record_id: str) -> Path:
        # Ids come from clients of the review UI: never let one name a path outside the store.
        if not record_id or "/" in record_id or "\\" in record_id or record_id.startswith("."):
            raise KeyError(f"No flag with id {record_id!r}.")
        return self.records_dir / f"{record_id}.json"


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()
