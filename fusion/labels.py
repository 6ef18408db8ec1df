"""The seven emotions, their ids, and a forgiving label parser."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
NUM_LABELS = len(EMOTIONS)
id2label: dict[int, str] = dict(enumerate(EMOTIONS))
label2id: dict[str, int] = {name: i for i, name in id2label.items()}

# Spellings seen in public emotion datasets (FER2013, CK+, GoEmotions-style, AffectNet, ...).
ALIASES: dict[str, str] = {
    "anger": "angry",
    "angered": "angry",
    "mad": "angry",
    "annoyed": "angry",
    "rage": "angry",
    "disgusted": "disgust",
    "contempt": "disgust",
    "afraid": "fear",
    "fearful": "fear",
    "scared": "fear",
    "fright": "fear",
    "happiness": "happy",
    "joy": "happy",
    "joyful": "happy",
    "glad": "happy",
    "neutrality": "neutral",
    "calm": "neutral",
    "none": "neutral",
    "sadness": "sad",
    "sorrow": "sad",
    "unhappy": "sad",
    "surprised": "surprise",
    "amazed": "surprise",
    "astonished": "surprise",
}


class UnknownLabelError(ValueError):
    """A label that is neither one of the 7 emotions, an alias, nor a valid id."""


def parse_label(value: str | int) -> int:
    """Return the label id for an emotion name, a known alias, or an id (0-6).

    Matching ignores case and surrounding whitespace. Raises `UnknownLabelError` naming the
    accepted values when nothing matches.
    """
    if isinstance(value, bool):  # bool is an int subclass; True is no emotion
        raise UnknownLabelError(f"Unknown emotion label {value!r}. {_accepted()}")
    if isinstance(value, int):
        if value in id2label:
            return value
        raise UnknownLabelError(f"Label id {value} is out of range 0-{NUM_LABELS - 1}. {_accepted()}")
    key = str(value).strip().lower()
    if key.isdigit() and int(key) in id2label:
        return int(key)
    key = ALIASES.get(key, key)
    if key in label2id:
        return label2id[key]
    raise UnknownLabelError(f"Unknown emotion label {value!r}. {_accepted()}")


def _accepted() -> str:
    return f"Use one of: {', '.join(EMOTIONS)} (or an id 0-{NUM_LABELS - 1}, or an alias such as 'joy')."
