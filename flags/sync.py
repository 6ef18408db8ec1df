"""Append-only sync of the flag store to a (private) Hub dataset repo, in a background thread.

Each sync uploads the records that are new or changed since the last successful sync as ONE
parquet shard (`data/flags-<time>-<id>.parquet`, images embedded) in one commit, so many flags
make few commits. A failed sync changes nothing locally and is retried at the next interval;
what was synced is remembered in `<store>/.sync_state.json`, so restarts neither lose nor
re-upload flags. Readers keep the newest version of each flag id (a review re-uploads it).
`restore` brings the dataset's flags back into an empty (or older) local store: a Space that
restarts without persistent storage keeps its review queue.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from flags.store import FlagRecord, FlagStore, atomic_write

logger = logging.getLogger(__name__)
STATE_FILE = ".sync_state.json"


def flags_features():
    from datasets import Features, Image, Value

    text = Value("string")
    return Features(
        {
            "id": text,
            "image": Image(),
            "text": text,
            "label": text,
            "predicted": text,
            "corrected": text,
            "review_status": text,
            "probabilities": text,
            "model": text,
            "revision": text,
            "time": text,
            "updated": text,
        }
    )


def is_flag_dataset(ds) -> bool:
    return {"id", "updated", "review_status"} <= set(ds.column_names)


def newest_flags(ds):
    """Flag datasets are append-only (a reviewed flag is uploaded again): the newest version of each id."""
    newest: dict[str, tuple[str, int]] = {}
    for index, (row_id, updated) in enumerate(zip(ds["id"], ds["updated"], strict=True)):
        if row_id not in newest or updated >= newest[row_id][0]:
            newest[row_id] = (updated, index)
    return ds.select(sorted(index for _, index in newest.values()))


class FlagSync:
    def __init__(self, store: FlagStore, repo_id: str, token: str | None = None, private: bool = True):
        self.store, self.repo_id, self.private = store, repo_id, private
        from huggingface_hub import HfApi

        self.api = HfApi(token=token)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # -- state ---------------------------------------------------------------------------------

    def _state_path(self) -> Path:
        return self.store.root / STATE_FILE

    def _synced(self) -> dict[str, str]:
        try:
            return json.loads(self._state_path().read_text())
        except (OSError, ValueError):
            return {}

    def pending(self) -> list[FlagRecord]:
        synced = self._synced()
        return [r for r in self.store.records() if synced.get(r.id) != r.updated]

    # -- one sync ------------------------------------------------------------------------------

    def sync_once(self) -> int:
        """Upload pending records as one shard; returns how many were uploaded (0 if none)."""
        with self._lock:
            records = self.pending()
            if not records:
                return 0
            from huggingface_hub import CommitOperationAdd

            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            name = f"data/flags-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
            with tempfile.TemporaryDirectory() as tmp:
                shard = Path(tmp) / "shard.parquet"
                self._write_shard(records, shard)
                self.api.create_repo(self.repo_id, repo_type="dataset", private=self.private, exist_ok=True)
                self.api.create_commit(
                    self.repo_id,
                    repo_type="dataset",
                    operations=[CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(shard))],
                    commit_message=f"Add {len(records)} flag(s)",
                )
            synced = self._synced()
            synced.update({r.id: r.updated for r in records})
            self.store.root.mkdir(parents=True, exist_ok=True)
            atomic_write(self._state_path(), json.dumps(synced).encode())
            self.last_error = None
            logger.info("Synced %d flag(s) to %s", len(records), self.repo_id)
            return len(records)

    def _write_shard(self, records: list[FlagRecord], path: Path) -> None:
        from datasets import Dataset

        rows = []
        for r in records:
            image_path = self.store.image_path(r)
            image = {"bytes": image_path.read_bytes(), "path": r.image} if image_path and image_path.is_file() else None
            rows.append(
                {
                    "id": r.id,
                    "image": image,
                    "text": r.text,
                    "label": r.label,
                    "predicted": r.predicted,
                    "corrected": r.corrected,
                    "review_status": (r.review or {}).get("status"),
                    "probabilities": json.dumps(r.probabilities),
                    "model": r.model,
                    "revision": r.revision,
                    "time": r.time,
                    "updated": r.updated,
                }
            )
        Dataset.from_list(rows, features=flags_features()).to_parquet(str(path))

    def restore(self) -> int:
        """Write flags that are in the dataset but not (or older) in the local store; returns how many."""
        from datasets import Image, load_dataset
        from huggingface_hub.errors import RepositoryNotFoundError

        with self._lock:
            try:
                ds = load_dataset(self.repo_id, split="train", token=self.api.token)
            except (RepositoryNotFoundError, FileNotFoundError):
                return 0  # nothing synced yet
            ds = newest_flags(ds.cast_column("image", Image(decode=False)))
            local = {r.id: r.updated for r in self.store.records()}
            synced, restored = self._synced(), 0
            for row in ds:
                if row["id"] in local and local[row["id"]] >= row["updated"]:
                    continue
                image = row["image"]["bytes"] if row["image"] else None
                self.store.put(_record(row, has_image=image is not None), image)
                synced[row["id"]] = row["updated"]
                restored += 1
            if restored:
                atomic_write(self._state_path(), json.dumps(synced).encode())
                logger.info("Restored %d flag(s) from %s", restored, self.repo_id)
            return restored

    # -- background ------------------------------------------------------------------------------

    def start(self, interval: float = 60.0) -> FlagSync:
        """Restore, then sync now and every `interval` seconds, in a daemon thread; errors are logged
        (without secrets) and retried at the next interval."""

        def loop() -> None:
            self._safe(self.restore)
            self._safe_sync()
            while not self._stop.wait(interval):
                self._safe_sync()

        self._thread = threading.Thread(target=loop, name="flag-sync", daemon=True)
        self._thread.start()
        return self

    def stop(self, flush: bool = True) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        if flush:
            self._safe_sync()

    def _safe_sync(self) -> int:
        return self._safe(self.sync_once)

    def _safe(self, action) -> int:
        try:
            return action()
        except Exception as err:  # noqa: BLE001 - the app must keep serving; flags stay local until the next try
            status = getattr(getattr(err, "response", None), "status_code", None)
            self.last_error = f"{type(err).__name__}" + (f" (HTTP {status})" if status else "")
            logger.warning("Flag %s with %s failed: %s; will retry.", action.__name__, self.repo_id, self.last_error)
            return 0


def _record(row: dict, has_image: bool) -> FlagRecord:
    """A flag as the store keeps it, from a dataset row (the review's time is its last update)."""
    review = (
        {"label": row["label"], "status": row["review_status"], "time": row["updated"]}
        if row["review_status"]
        else None
    )
    return FlagRecord(
        id=row["id"],
        time=row["time"],
        text=row["text"] or "",
        image=f"{row['id']}.png" if has_image else None,
        predicted=row["predicted"],
        probabilities=json.loads(row["probabilities"] or "{}"),
        corrected=row["corrected"],
        model=row["model"] or "",
        revision=row["revision"],
        review=review,
        updated=row["updated"],
    )
