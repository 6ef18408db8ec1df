"""YuNet (libfacedetection, from the `yuface` wheel) called with a result buffer this module owns.

`yuface.detect` mallocs a 36 KB result buffer on every call and never frees it: a server leaked
36 KB per photo (measured: +36.0 KB of live heap per call, 300 calls, `mallinfo2`), hundreds of
MB a day. The wheel's own `libfacedetection.so` is called here instead, through ctypes, writing
into a numpy buffer that is freed with the array. Its result layout (read from the wheel's
binary, as `yuface` reads it): an int32 count, then per face 16 int16 values: score (0-100),
x, y, w, h, 10 landmark coordinates (eyes, nose, mouth corners), padding; at most 1,024 faces.
"""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

MAX_RESULTS = 1024  # the library writes at most this many faces
RESULT_BYTES = 4 + MAX_RESULTS * 16 * 2  # within the 0x9000 bytes yuface allocates


@lru_cache(maxsize=1)
def _library() -> tuple[ctypes._CFuncPtr, ThreadPoolExecutor]:
    import yuface  # loads the library and the OpenMP runtime it links to

    library = ctypes.CDLL(str(Path(yuface.__file__).parent / "libfacedetection.so"))
    detect = library["_Z14facedetect_cnnPhS_iii"]  # facedetect_cnn(result, bgr, width, height, step): C++ name
    detect.restype = ctypes.c_void_p
    detect.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    # One thread runs every detection: calls are serialised as under yuface's binding (the library is not
    # documented as thread-safe), and its ~10 MB of working memory stays in that thread's malloc arena
    # instead of one copy per server thread that happened to call it.
    return detect, ThreadPoolExecutor(max_workers=1, thread_name_prefix="yunet")


os.register_at_fork(after_in_child=_library.cache_clear)  # a forked child (a data-loading worker) starts its own


def detect(bgr: np.ndarray) -> np.ndarray:
    """YuNet on an HxWx3 uint8 BGR image: one row per face, int16 (score, x, y, w, h, 10 landmark values)."""
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ValueError(f"YuNet needs an HxWx3 uint8 BGR image, not {bgr.dtype} {bgr.shape}.")
    bgr = np.ascontiguousarray(bgr)
    result = np.zeros(RESULT_BYTES, dtype=np.uint8)
    height, width = bgr.shape[:2]
    function, worker = _library()
    worker.submit(function, result.ctypes.data, bgr.ctypes.data, width, height, width * 3).result()
    count = min(int(result[:4].view(np.int32)[0]), MAX_RESULTS)
    return result[4:].view(np.int16).reshape(MAX_RESULTS, 16)[:count, :15].copy()
