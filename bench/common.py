"""Helpers shared by the benchmark scripts: timing statistics, the machine, JSON output (tables: `train.report`)."""

from __future__ import annotations

import ctypes
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from train import report
from train.report import print_table

__all__ = [
    "SHORT_TEXTS",
    "environment",
    "heap_in_use_mb",
    "print_table",
    "time_calls",
    "time_interleaved",
    "write_json",
]


SHORT_TEXTS = [
    "I can't believe they cancelled the show tonight.",
    "What a lovely surprise to see you here!",
    "Please stop shouting at me.",
    "The smell in that fridge made me gag.",
    "I miss my grandmother so much these days.",
    "There is a strange noise coming from the basement and I am home alone.",
    "We are meeting at ten in the small conference room.",
    "Honestly this is the best day I have had in years.",
]


def time_calls(fn: Callable[[int], Any], repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median, p95 and mean latency in milliseconds of fn(i) over `repeats` calls."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p95_ms": times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))],
        "mean_ms": statistics.fmean(times),
        "n": len(times),
    }


def time_interleaved(fns: dict[Any, Callable[[int], Any]], repeats: int, warmup: int = 3) -> dict[Any, float]:
    """Median milliseconds of each fn(i), the calls taken in turns (a, b, c, a, b, c, ...): on a shared CPU a
    busy spell then slows every contender alike, so their ratios hold where back-to-back blocks would not."""
    for i in range(warmup):
        for fn in fns.values():
            fn(i)
    times: dict[Any, list[float]] = {name: [] for name in fns}
    for i in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(i)
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]  # fmt: skip


def heap_in_use_mb() -> float | None:
    """MB this process holds from malloc right now (glibc's count, mallinfo2: arenas and mmapped blocks), whatever
    allocated it: C libraries included, which tracemalloc does not see. None without glibc 2.33+."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    """The shared JSON writer, with the machine's environment added (nothing when `path` is None)."""
    if path is None:
        return
    report.write_json(path, {"environment": environment(), **payload})
    print(f"Wrote {path}")
