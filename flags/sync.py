"""Append-only sync of the flag store to a (private) Hub dataset repo, in a background thread.

Each sync uploads the records that are new or changed since the last successful sync as ONE
parquet shard (`data/flags-<time>-<id>.parquet`, images embedded) in one commit, so many flags
make few commits. A failed sync changes nothing locally and is retried at the next interval;
what was synced is remembered in `<store>/.sync_state.json`, so restarts neither lose nor
re-upload flags. Readers keep the newest version of each flag id (a review re-uploads it).
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

    # -- background ------------------------------------------------------------------------------

    def start(self, interval: float = 60.0) -> FlagSync:
        """Sync every `interval` seconds in a daemon thread; errors are logged (without secrets) and retried."""

        def loop() -> None:
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
        try:
            return self.sync_once()
        except Exception as err:  # noqa: BLE001 - the app must keep serving; flags stay local until the next try
            status = getattr(getattr(err, "response", None), "status_code", None)
            self.last_error = f"{type(err).__name__}" + (f" (HTTP {status})" if status else "")
            logger.warning("Flag sync to %s failed: %s; will retry.", self.repo_id, self.last_error)
            return 0
