import json
import threading

import pytest
from PIL import Image

from flags.store import FlagStore, FlagStoreError, FlagStoreFullError
from fusion.labels import UnknownLabelError
from train.data import load_sources


def test_add_review_and_train_from_flags(tmp_path):
    store = FlagStore(tmp_path / "flags")
    first = store.add(
        corrected="joy",
        text="best day ever",
        image=Image.new("RGB", (20, 20), "red"),
        predicted="sad",
        probabilities={"sad": 0.9, "happy": 0.1},
        model="m",
        revision="abc",
    )
    second = store.add(corrected="anger", text="this is unacceptable")
    assert first.corrected == "happy" and store.image_path(first).is_file()
    assert [r.id for r in store.records()] == [first.id, second.id]
    reviewed = store.review(second.id, "disgust")
    assert reviewed.review["status"] == "changed" and reviewed.label == "disgust"
    third = store.add(corrected="fear", text="what was that noise")  # nobody reviewed it
    assert store.review(first.id, "happy").review["status"] == "confirmed"
    by_split, report = load_sources([f"flags:{tmp_path / 'flags'}"])
    ds = by_split["all"]
    names = ds.features["label"].names
    assert [names[x] for x in ds["label"]] == ["happy", "disgust"]  # reviewed only; the review's label wins
    assert ds[0]["image"].size == (20, 20) and ds[1]["image"] is None
    assert report.notes == [
        f"flags:{tmp_path / 'flags'}: 2 reviewed flag(s) used, 1 unreviewed left out (--unreviewed-flags adds them)"
    ]
    every = load_sources([f"flags:{tmp_path / 'flags'}"], unreviewed_flags=True)[0]["all"]
    assert [names[x] for x in every["label"]] == ["happy", "disgust", third.corrected]


def test_a_full_store_refuses_new_flags_and_keeps_the_old(tmp_path):
    store = FlagStore(tmp_path, max_flags=2)
    store.add(corrected="sad", text="one")
    store.add(corrected="sad", text="two")
    with pytest.raises(FlagStoreFullError, match="The flag store is full"):
        store.add(corrected="sad", text="three")
    assert [r.text for r in store.records()] == ["one", "two"]


def test_bad_flags_are_refused(tmp_path):
    store = FlagStore(tmp_path)
    with pytest.raises(UnknownLabelError):
        store.add(corrected="bored", text="meh")
    with pytest.raises(ValueError, match="Nothing to flag"):
        store.add(corrected="sad", text="  ")
    with pytest.raises(KeyError):
        store.review("../../etc/passwd", "sad")
    assert store.records() == []


def test_concurrent_flaggers_lose_nothing(tmp_path):
    store = FlagStore(tmp_path)
    errors = []

    def flagger(worker: int) -> None:
        try:
            for i in range(50):
                store.add(corrected="sad", text=f"worker {worker} flag {i}")
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=flagger, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = store.records()
    assert not errors and len(records) == 800
    assert len({r.text for r in records}) == 800 and len({r.id for r in records}) == 800


def test_stray_temp_and_torn_files_are_ignored(tmp_path):
    store = FlagStore(tmp_path)
    good = store.add(corrected="fear", text="a spider!")
    (store.records_dir / ".tmp-abc.json").write_text('{"id": "half')  # a writer killed mid-write
    (store.records_dir / "broken.json").write_text("{not json")
    assert [r.id for r in store.records()] == [good.id]
    assert json.loads((store.records_dir / f"{good.id}.json").read_text())["corrected"] == "fear"


def test_write_failure_is_a_clear_error(tmp_path):
    store = FlagStore(tmp_path)
    store.add(corrected="sad", text="first")
    (tmp_path / "records").rename(tmp_path / "moved")
    (tmp_path / "records").write_text("a file where the folder should be")
    with pytest.raises(FlagStoreError):
        store.add(corrected="sad", text="second")
