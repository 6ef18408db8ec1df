"""Honest doubt (`fusion.doubt`) and the Live tab's steady view, as functions and through the predictor's JSON."""

from __future__ import annotations

import pytest

from fusion.doubt import MARGIN, close_call, disagreement, doubt
from ui.live import STEADY_SECONDS, steady

HAPPY = {"angry": 0.02, "disgust": 0.01, "fear": 0.02, "happy": 0.85, "neutral": 0.05, "sad": 0.03, "surprise": 0.02}
ANGRY = {"angry": 0.8, "disgust": 0.05, "fear": 0.03, "happy": 0.02, "neutral": 0.05, "sad": 0.03, "surprise": 0.02}
CLOSE = {"angry": 0.05, "disgust": 0.02, "fear": 0.03, "happy": 0.40, "neutral": 0.36, "sad": 0.08, "surprise": 0.06}


def test_a_close_call_names_both_emotions():
    assert close_call(CLOSE) == "not sure: happy or neutral"
    assert close_call(HAPPY) is None
    assert close_call({**CLOSE, "happy": 0.36 + MARGIN + 0.01, "neutral": 0.36}) is None


def test_disagreeing_branches_are_named_and_agreeing_ones_are_not():
    assert disagreement(HAPPY, ANGRY) == "the face says happy, the text says angry"
    assert disagreement(HAPPY, HAPPY) is None and disagreement(HAPPY, None) is None
    assert disagreement(HAPPY, CLOSE) is None  # an unsure branch does not "say" anything
    assert doubt(CLOSE, HAPPY, ANGRY) == "The face says happy, the text says angry; not sure: happy or neutral."
    assert doubt(HAPPY, HAPPY, HAPPY) is None


def test_the_predictor_reports_doubt_in_its_own_field_and_in_the_note(predictor):
    result = predictor.predict(text="something or other")
    data = result.to_dict()
    assert "doubt" in data and set(data) >= {"label", "probabilities", "note"}  # existing fields stay
    expected = doubt(result.probabilities, result.image_probabilities, result.text_probabilities)
    assert data["doubt"] == expected and (expected is None or expected in data["note"])


def test_the_steady_view_averages_about_the_last_second():
    history = [(0.0, HAPPY), (0.5, ANGRY), (1.0, ANGRY)]
    shown = steady(history, now=1.0)  # the frames at 0.5 s and 1.0 s (within STEADY_SECONDS)
    assert STEADY_SECONDS == 1.0
    assert shown["angry"] == pytest.approx(0.8) and shown["happy"] == pytest.approx(0.02)
    both = steady(history[:2], now=0.5)
    assert both["happy"] == pytest.approx((0.85 + 0.02) / 2)
