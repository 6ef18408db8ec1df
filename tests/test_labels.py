import pytest

from fusion.labels import ALIASES, EMOTIONS, UnknownLabelError, id2label, label2id, parse_label


def test_seven_emotions_in_order():
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert all(label2id[id2label[i]] == i for i in range(7))


@pytest.mark.parametrize(
    "value,expected",
    [
        ("happy", "happy"),
        ("Joy", "happy"),
        (" happiness ", "happy"),
        ("anger", "angry"),
        ("SADNESS", "sad"),
        ("surprised", "surprise"),
        ("fearful", "fear"),
        ("disgusted", "disgust"),
        (3, "happy"),
        ("6", "surprise"),
    ],
)
def test_parse_accepts_names_aliases_and_ids(value, expected):
    assert id2label[parse_label(value)] == expected


def test_every_alias_points_at_an_emotion():
    assert set(ALIASES.values()) <= set(EMOTIONS)


@pytest.mark.parametrize("value", ["excited", "", "7", -1, 7, True, "happy sad"])
def test_parse_rejects_unknown_with_clear_message(value):
    with pytest.raises(UnknownLabelError) as err:
        parse_label(value)
    message = str(err.value)
    assert repr(value) in message or str(value) in message
    assert "angry" in message and "surprise" in message  # names what is accepted
