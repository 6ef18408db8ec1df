"""Honest doubt: say when the face and the text point to different emotions, or when two emotions are too close
to call, instead of serving a confident-looking answer.

`MARGIN` is the gap between the two most likely emotions below which the answer is named as a doubt: the
smallest gap at which the top emotion is right at least two times in three on the default's validation/dev
data (`bench/doubt.py` measures it; the probabilities are calibrated, so one margin serves every branch). Measured
on 1,000 FER+ validation faces and 1,000 dev texts of the five text corpora: below a gap of 0.40 the top emotion is
right 37% to 61% of the time, from 0.40 on 68% to 90%.
"""

from __future__ import annotations

MARGIN = 0.4
BRANCH_SURE = 0.4  # a branch speaks for itself only when its own top emotion has at least this probability


def top_two(probabilities: dict[str, float]) -> tuple[tuple[str, float], tuple[str, float]]:
    ranked = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)
    return ranked[0], ranked[1]


def close_call(probabilities: dict[str, float], margin: float = MARGIN) -> str | None:
    """ "not sure: A or B" when the top two are within `margin`, else None."""
    (first, p1), (second, p2) = top_two(probabilities)
    return f"not sure: {first} or {second}" if p1 - p2 < margin else None


def disagreement(image: dict[str, float] | None, text: dict[str, float] | None) -> str | None:
    """ "the face says A, the text says B" when each branch is fairly sure of a different emotion."""
    if not image or not text:
        return None
    (face, p_face), _ = top_two(image)
    (words, p_text), _ = top_two(text)
    if face == words or min(p_face, p_text) < BRANCH_SURE:
        return None
    return f"the face says {face}, the text says {words}"


def doubt(
    probabilities: dict[str, float], image: dict[str, float] | None = None, text: dict[str, float] | None = None
) -> str | None:
    """What a person should doubt about this answer, in words (None: nothing)."""
    found = [d for d in (disagreement(image, text), close_call(probabilities)) if d]
    if not found:
        return None
    message = "; ".join(found)
    return message[0].upper() + message[1:] + "."
