"""Cross-request batching: concurrent `predict` calls share one model step.

Each caller decodes its image and finds its faces in its own thread (`EmotionPredictor.prepare`, so that
work overlaps the model running on earlier requests) and gets its own errors there; the worker runs the
model on whatever prepared requests are waiting. One user's broken upload never fails the others
(Gradio's `batch=True` fails the whole batch on one bad item).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any

from fusion.faces import MAX_FACES
from fusion.predictor import MAX_BATCH, EmotionPredictor, Prediction, PreparedRequest


class MicroBatcher:
    """Runs one worker thread; callers block on a future. A batch is whatever is waiting when the worker
    is free (up to `max_batch`): under load requests pile up while the model runs, and a lone request is
    never held back (`max_wait` > 0 waits that long for company, which costs a lone caller that much)."""

    def __init__(self, predictor: EmotionPredictor, max_batch: int = 8, max_wait: float = 0.0, warm_up: bool = False):
        self.predictor = predictor
        self._warm_up = warm_up
        self.max_batch = min(max_batch, MAX_BATCH)
        self.max_wait = max_wait
        self._queue: queue.Queue[tuple[PreparedRequest, Future] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._worker.start()

    def predict(
        self,
        image: Any = None,
        text: str | None = None,
        face: int | None = None,
        timeout: float | None = 120,
        max_faces: int = MAX_FACES,
    ) -> Prediction:
        prepared = self.predictor.prepare(image, text, face, max_faces)  # raises the caller's own ValueErrors
        future: Future = Future()
        self._queue.put((prepared, future))
        return future.result(timeout=timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=5)

    def _run(self) -> None:
        if self._warm_up:  # in this thread: each thread running torch gets its own OpenMP threads, and
            self.predictor.warm_up()  # two sets (main + worker) slow each other down on 2 cores
        while True:
            first = self._queue.get()
            if first is None:
                return
            items = [first]
            try:  # take whatever else is already waiting, up to max_batch (within max_wait)
                while len(items) < self.max_batch:
                    item = self._queue.get(timeout=self.max_wait) if self.max_wait else self._queue.get_nowait()
                    if item is None:
                        self._queue.put(None)
                        break
                    items.append(item)
            except queue.Empty:
                pass
            try:
                results = self.predictor.predict_prepared([prepared for prepared, _ in items])
            except Exception as err:  # noqa: BLE001 - an unexpected failure must reach every waiting caller
                results = [err] * len(items)
            for (_, future), result in zip(items, results):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
