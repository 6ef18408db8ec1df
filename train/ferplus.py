"""FER+ (Barsoum et al., ICMI 2016; labels MIT, Microsoft): FER2013 faces with 10 crowd votes each.

A parquet file with a `votes` column (10 counts in FER+'s order) is read as FER+: each face's target is
its vote distribution over the project's 7 emotions after the reference outlier rule of FER+'s own
trainer (`src/ferplus.py`): a single vote is dropped as an outlier. Votes for contempt, "unknown" and
"not a face" are not emotions of ours and are left out. A face whose remaining votes are all gone keeps
its majority label as the target.
"""

from __future__ import annotations

from typing import Any

from fusion.labels import EMOTIONS

# FER+'s vote order; "unknown" and "NF" (not a face) are not emotions.
VOTE_NAMES = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt", "unknown", "NF")
OURS = {name: i for i, name in enumerate(VOTE_NAMES) if name in EMOTIONS}


def has_votes(ds: Any) -> bool:
    """A dataset with FER+'s `votes` column (a sequence of 10 counts)."""
    if "votes" not in ds.column_names or not len(ds):
        return False
    first = ds[0]["votes"]
    return isinstance(first, (list, tuple)) and len(first) == len(VOTE_NAMES)


def vote_target(votes: list[int]) -> dict[str, float] | None:
    """The vote distribution over our emotions after dropping single (outlier) votes; None if nothing is left."""
    kept = {name: float(votes[i]) for name, i in OURS.items() if votes[i] > 1}
    total = sum(kept.values())
    return {name: count / total for name, count in kept.items()} if total else None
