"""The Space in headless Chromium (Debian's, driven by Playwright): what a visitor actually does.

Each test saves a screenshot under test-output/browser/.
"""

import os
import shutil
from pathlib import Path

import pytest

from flags.store import FlagStore
from fusion.labels import EMOTIONS
from tests.conftest import ASTRONAUT, ROOT, serve_app

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "test-output" / "browser"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
SECRET = "maintainer-s3cret"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.getenv("REQUIRE_BROWSER"):
            pytest.fail("Debian chromium is required (REQUIRE_BROWSER is set) but not installed.")
        pytest.skip("Debian chromium is not installed (./dev.sh test installs it).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site(predictor, tmp_path_factory):
    flag_dir = tmp_path_factory.mktemp("browser-flags")
    with serve_app(predictor, flag_dir, review_secret=SECRET) as url:
        yield url, FlagStore(flag_dir)


@pytest.fixture
def page(browser, site, request):
    context = browser.new_context(viewport={"width": 1280, "height": 1100}, permissions=["camera"])
    page = context.new_page()
    page.goto(site[0])
    page.get_by_role("button", name="Predict", exact=True).wait_for()
    yield page
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def _wait_for_prediction(page) -> str:
    """The top emotion shown by the Label component."""
    label = page.locator("[data-testid='label-output-value']").first
    label.wait_for(timeout=30_000)
    return label.inner_text().strip()


def _predict_upload(page, text: str) -> str:
    page.get_by_role("button", name="Upload file").click()
    page.locator("input[type=file]").first.set_input_files(str(ASTRONAUT))
    page.get_by_label("Text", exact=True).fill(text)
    page.get_by_role("button", name="Predict", exact=True).click()
    return _wait_for_prediction(page)


def test_upload_flow(page):
    top = _predict_upload(page, "We did it, I am so proud of this team!")
    assert top in EMOTIONS
    chart = page.locator(".modality-chart")
    chart.wait_for()
    assert "image" in chart.inner_text() and "text" in chart.inner_text()


def test_example_click(page):
    page.get_by_text("I keep hearing footsteps downstairs").click()
    assert _wait_for_prediction(page) in EMOTIONS
    assert (
        page.get_by_label("Text", exact=True).input_value() == "I keep hearing footsteps downstairs but I live alone."
    )


def test_webcam_capture_with_fake_camera(page):
    page.get_by_text("Click to Access Webcam").click()
    page.wait_for_function("() => { const v = document.querySelector('video'); return v && v.videoWidth > 0 }")
    page.locator("button[aria-label='capture photo']").click()
    page.get_by_label("Text", exact=True).fill("What a morning.")
    page.get_by_role("button", name="Predict", exact=True).click()
    assert _wait_for_prediction(page) in EMOTIONS
    page.locator("#prediction-note").get_by_text("No face found").wait_for()  # Chromium's fake camera shows none
    page.get_by_text("Details (JSON)").click()
    assert "face_found" in page.locator(".json-holder, [data-testid='json']").first.inner_text()


def _choose(page, label: str, option: str) -> None:
    page.get_by_label(label).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_flag_flow_writes_the_chosen_label(page, site):
    store = site[1]
    before = len(store.records())
    shown = _predict_upload(page, "This is fine.")
    page.get_by_text("Wrong? Flag it with the right emotion").click()
    _choose(page, "Correct emotion", "fear")
    page.get_by_role("button", name="Flag", exact=True).click()
    page.get_by_text(f"Flagged as fear (predicted {shown})").wait_for()  # the chosen and the shown label
    records = store.records()
    assert len(records) == before + 1
    assert records[-1].corrected == "fear" and records[-1].predicted == shown and records[-1].text == "This is fine."
    assert records[-1].image and store.image_path(records[-1]).is_file()


def test_review_tab_needs_the_secret_and_saves(page, site):
    store = site[1]
    record = store.add(corrected="happy", text="review me")
    page.get_by_role("tab", name="Review").click()
    page.get_by_label("Maintainer secret").fill("wrong")
    page.get_by_role("button", name="Load flags").click()
    page.get_by_text("Wrong maintainer secret").first.wait_for()
    page.get_by_label("Maintainer secret").fill(SECRET)
    page.get_by_role("button", name="Load flags").click()
    page.get_by_text("review me").first.wait_for()
    page.get_by_label("sad", exact=True).check()
    page.get_by_role("button", name="Save review").click()
    page.get_by_text("Saved:").wait_for()
    assert store.get(record.id).review["label"] == "sad"


def test_flag_storage_failure_is_explained_and_prediction_still_works(browser, predictor, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the flag folder should be")  # like a full disk or a read-only mount
    with serve_app(predictor, blocked) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 1100})
        page = context.new_page()
        page.goto(url)
        page.get_by_role("button", name="Predict", exact=True).wait_for()
        assert _predict_upload(page, "Fine, whatever.") in EMOTIONS
        page.get_by_text("Wrong? Flag it with the right emotion").click()
        _choose(page, "Correct emotion", "sad")
        page.get_by_role("button", name="Flag", exact=True).click()
        page.get_by_text("Flag not saved (storage problem).").wait_for()
        page.get_by_text("the flag could not be saved right now").first.wait_for()
        page.get_by_role("button", name="Predict", exact=True).click()
        assert _wait_for_prediction(page) in EMOTIONS  # predictions are unaffected
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "flag_storage_failure.png"), full_page=True)
        context.close()


def _fake_camera_file(folder: Path) -> Path:
    """A Y4M clip of the astronaut photo, for Chromium's --use-file-for-fake-video-capture."""
    from PIL import Image

    photo = Image.open(ASTRONAUT).convert("RGB").resize((240, 240))
    frame = Image.new("RGB", (320, 240), (200, 200, 200))
    frame.paste(photo, (40, 0))
    y, u, v = frame.convert("YCbCr").split()
    planes = y.tobytes() + u.resize((160, 120)).tobytes() + v.resize((160, 120)).tobytes()
    path = folder / "face.y4m"
    path.write_bytes(b"YUV4MPEG2 W320 H240 F10:1 Ip A1:1 C420jpeg\n" + (b"FRAME\n" + planes) * 10)
    return path


def _start_live(page) -> None:
    page.get_by_role("tab", name="Live").click()
    camera = page.locator("#live-webcam")
    camera.get_by_text("Click to Access Webcam").click()
    page.wait_for_function(
        "() => { const v = document.querySelector('#live-webcam video'); return v && v.videoWidth > 0 }"
    )
    camera.get_by_text("Record").click()


def test_live_tab_shows_labels_from_the_fake_camera(browser, site, tmp_path):
    camera = _fake_camera_file(tmp_path)
    face_browser = browser.browser_type.launch(  # a camera that films a face
        executable_path=CHROMIUM, args=[*ARGS, f"--use-file-for-fake-video-capture={camera}"]
    )
    try:
        page = face_browser.new_context(viewport={"width": 1280, "height": 1100}, permissions=["camera"]).new_page()
        page.goto(site[0])
        _start_live(page)
        live = page.locator("#live-emotion [data-testid='label-output-value']")
        live.wait_for(timeout=30_000)
        assert live.inner_text().strip() in EMOTIONS
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "live_with_a_face.png"), full_page=True)
    finally:
        face_browser.close()


def test_no_face_note_is_visible_in_predict_and_live(page, tmp_path):
    from PIL import Image

    landscape = tmp_path / "landscape.png"
    Image.new("RGB", (640, 480), (40, 180, 60)).save(landscape)
    page.get_by_role("button", name="Upload file").click()
    page.locator("input[type=file]").first.set_input_files(str(landscape))
    page.get_by_label("Text", exact=True).fill("I am so angry right now")
    page.get_by_role("button", name="Predict", exact=True).click()
    assert _wait_for_prediction(page) in EMOTIONS  # the text's answer
    page.locator("#prediction-note").get_by_text("No face found").wait_for()
    _start_live(page)  # Chromium's default fake camera shows no face
    page.locator("#live-note").get_by_text("No face found").wait_for(timeout=30_000)


def test_flagging_is_rate_limited_per_visitor(browser, predictor, tmp_path):
    with serve_app(predictor, tmp_path / "flags", flags_per_session=1) as url:
        page = browser.new_context(viewport={"width": 1280, "height": 1100}).new_page()
        page.goto(url)
        shown = _predict_upload(page, "Meh.")
        page.get_by_text("Wrong? Flag it with the right emotion").click()
        page.get_by_text("Flagging stores the image and the text you sent").wait_for()  # visitors are told
        _choose(page, "Correct emotion", "sad")
        page.get_by_role("button", name="Flag", exact=True).click()
        page.get_by_text(f"Flagged as sad (predicted {shown})").wait_for()
        page.get_by_role("button", name="Flag", exact=True).click()
        page.get_by_text("You have flagged a lot").first.wait_for()
        assert len(FlagStore(tmp_path / "flags").records()) == 1


def test_video_tab_shows_the_timeline_and_the_csv(page, tmp_path):
    from tests.test_video import face_then_wall_clip

    page.get_by_role("tab", name="Video").click()
    page.locator("#video-input input[type=file]").set_input_files(face_then_wall_clip(tmp_path / "clip.mp4"))
    page.get_by_role("button", name="Analyse video").click()
    page.locator("#video-summary").get_by_text("8 frames scored").wait_for(timeout=60_000)
    page.locator("#video-plot canvas, #video-plot svg").first.wait_for()
    assert page.locator("#video-csv").get_by_text(".csv").count() >= 1
    assert page.locator("#video-overall [data-testid='label-output-value']").inner_text().strip() in EMOTIONS


def test_why_shows_word_weights_and_a_face_heat_map(page):
    _predict_upload(page, "I am absolutely furious about this")
    page.get_by_role("button", name="Why? (slower)").click()
    page.locator("#why-summary").get_by_text("worked out in").wait_for(timeout=60_000)
    assert page.locator("#why-words").get_by_text("furious").count() >= 1
    page.locator("#why-face img").wait_for()
