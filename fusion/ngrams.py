"""Hashed character n-grams of a text: what a routed text head's router reads besides the encoder's features.

Where a text comes from shows in its surface (Reddit's curly quotes and "[NAME]", tweets' spelling, dialogue's
spaced punctuation) more than in its meaning, which the encoder's features are trained to keep and little else.
Each text becomes the L2-normalised counts of its character 1- to 5-grams, hashed into `buckets` ids; id 0 is
padding. The hash is a polynomial over the characters' code points, mixed by a multiplication: the ids are the
same in every process and on every machine, and a text costs a few numpy calls whatever its length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

NGRAM_SIZES = 5  # 1- to 5-grams
NGRAM_CHARS = 300  # the surface shows in the opening; longer texts cost more and say no more
_BASE, _MIX = np.uint64(0x100000001B3), np.uint64(0x9E3779B97F4A7C15)


def hashed_ngrams(text: str, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids in 1..buckets, weights): each distinct hashed n-gram of the text once, its weights of unit L2 norm."""
    codes = np.frombuffer(text[:NGRAM_CHARS].encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    hashes, rolling = [np.zeros(0, dtype=np.uint64)], np.zeros(len(codes), dtype=np.uint64)
    with np.errstate(over="ignore"):  # the hash wraps around 2**64 by design
        for n in range(1, min(NGRAM_SIZES, len(codes)) + 1):
            rolling = rolling[: len(codes) - n + 1] * _BASE + codes[n - 1 :]  # the n-grams starting at each char
            hashes.append((rolling * _MIX) >> np.uint64(32))
    ids, counts = np.unique(np.concatenate(hashes) % np.uint64(buckets) + np.uint64(1), return_counts=True)
    return ids.astype(np.int64), (counts / max(np.sqrt(np.square(counts).sum()), 1.0)).astype(np.float32)


def ngram_batch(texts: Sequence[str], buckets: int) -> dict[str, torch.Tensor]:
    """{"text_ngrams": (batch, longest) ids, "text_ngram_weights": their weights}, padded with id 0, weight 0."""
    rows = [hashed_ngrams(text, buckets) for text in texts]
    width = max((len(ids) for ids, _ in rows), default=0) or 1
    ids, weights = np.zeros((len(rows), width), dtype=np.int64), np.zeros((len(rows), width), dtype=np.float32)
    for r, (row_ids, row_weights) in enumerate(rows):
        ids[r, : len(row_ids)], weights[r, : len(row_weights)] = row_ids, row_weights
    return {"text_ngrams": torch.from_numpy(ids), "text_ngram_weights": torch.from_numpy(weights)}
