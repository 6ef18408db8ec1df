"""The fake Hub (tests/hub_server/) driven by the real `huggingface_hub` and `datasets` clients."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.hub_server import FakeHub, serve_hub
from tests.hub_server import hub as hub  # the fixture; "as hub" keeps ruff F401/F811 quiet

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")


def _model_folder(folder: Path) -> Path:
    """A small model folder: real safetensors weights + config.json + README.md with a model card header."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    save_file({"weight": np.arange(64, dtype=np.float32).reshape(8, 8)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"num_labels": 7}))
    (folder / "README.md").write_text("---\nlicense: mit\ntags:\n- emotion\n---\n# Emotion model\n")
    return folder


def _upload(api: HfApi, repo_id: str, path: str, content: bytes, message: str, repo_type: str = "model") -> str:
    info = api.upload_file(
        path_or_fileobj=content, path_in_repo=path, repo_id=repo_id, repo_type=repo_type, commit_message=message
    )
    return info.oid


def test_create_repos_of_every_type(hub: FakeHub) -> None:
    api = HfApi(token=hub.token)
    model = api.create_repo("tester/model")
    dataset = api.create_repo("tester/data", repo_type="dataset")
    space = api.create_repo("tester/demo", repo_type="space", space_sdk="gradio")
    secret = api.create_repo("emotion-org/secret", private=True)  # an org "tester" may write to

    assert (model.repo_type, model.repo_id) == ("model", "tester/model")
    assert dataset == f"{hub.url}/datasets/tester/data" and space.repo_type == "space"
    assert hub.repo("model", "emotion-org/secret").private and not hub.repo("model", "tester/model").private
    assert api.space_info("tester/demo").sdk == "gradio"
    assert "sdk: gradio" in hub.repo_files("space", "tester/demo")["README.md"].decode()
    assert api.model_info("emotion-org/secret").private is True
    assert set(hub.repo_files("dataset", "tester/data")) == {".gitattributes"}  # the Hub's initial commit

    assert api.create_repo("tester/model", exist_ok=True) == model  # exist_ok: the 409 answer carries the url
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo("tester/model")
    assert conflict.value.response.status_code == 409
    with pytest.raises(HfHubHTTPError) as forbidden:
        HfApi(token=hub.other_token).create_repo("tester/stolen")
    assert forbidden.value.response.status_code == 403
    assert api.whoami()["name"] == "tester"
    assert secret.repo_id == "emotion-org/secret"


def test_upload_folder_then_snapshot_download_is_byte_identical(hub: FakeHub, tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model")
    api = HfApi(token=hub.token)
    api.create_repo("tester/emotion")
    info = api.upload_folder(repo_id="tester/emotion", folder_path=folder, commit_message="Upload model")

    head = hub.repo("model", "tester/emotion").commits[info.oid]
    assert head.files["model.safetensors"].lfs and not head.files["config.json"].lfs  # preupload said "lfs"
    methods = [(m, p.rsplit("/", 1)[-1]) for m, p in hub.requests]
    assert ("POST", "batch") in methods and ("POST", "verify") in methods
    assert sum(m == "PUT" for m, _ in hub.requests) == 1  # only the LFS file went through the storage PUT

    local = Path(snapshot_download("tester/emotion", cache_dir=tmp_path / "fresh-cache"))
    assert local.name == info.oid
    remote = hub.repo_files("model", "tester/emotion")
    assert {p.name: p.read_bytes() for p in local.iterdir()} == remote
    for name in ("model.safetensors", "config.json", "README.md"):
        assert (local / name).read_bytes() == (folder / name).read_bytes()

    hub.clear_requests()  # unchanged files are skipped: no LFS upload and no new commit
    again = api.upload_folder(repo_id="tester/emotion", folder_path=folder)
    assert again.oid == info.oid and not any(m == "PUT" or "/commit/" in p for m, p in hub.requests)


def test_download_at_tag_branch_and_older_commit(hub: FakeHub, tmp_path: Path) -> None:
    api = HfApi(token=hub.token)
    api.create_repo("tester/versions")
    first = _upload(api, "tester/versions", "labels.json", b'["v1"]', "v1")
    api.create_tag("tester/versions", tag="v1.0", revision=first)
    api.create_branch("tester/versions", branch="stable", revision=first)
    second = _upload(api, "tester/versions", "labels.json", b'["v2"]', "v2")
    _upload(api, "tester/versions", "extra.txt", b"only in v3", "v3")
    cache = tmp_path / "cache"

    def read(revision: str | None) -> bytes:
        return Path(hf_hub_download("tester/versions", "labels.json", revision=revision, cache_dir=cache)).read_bytes()

    assert read(None) == read("main") == read(second) == b'["v2"]'
    assert read("v1.0") == read(first) == read("stable") == b'["v1"]'
    old = Path(snapshot_download("tester/versions", revision=first, cache_dir=tmp_path / "old"))
    assert sorted(p.name for p in old.iterdir()) == [".gitattributes", "labels.json"]

    refs = api.list_repo_refs("tester/versions")
    assert {t.name: t.target_commit for t in refs.tags} == {"v1.0": first}
    assert {b.name for b in refs.branches} == {"main", "stable"}
    assert hub.repo_files("model", "tester/versions", "v1.0") == {
        ".gitattributes": hub.repo_files("model", "tester/versions")[".gitattributes"],
        "labels.json": b'["v1"]',
    }
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("tester/versions", "labels.json", revision="no-such-branch", cache_dir=cache)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("tester/versions", "missing.bin", cache_dir=cache)
    with pytest.raises(HfHubHTTPError) as exists:
        api.create_tag("tester/versions", tag="v1.0")
    assert exists.value.response.status_code == 409


def test_listing_commits_and_model_info(hub: FakeHub, tmp_path: Path) -> None:
    api = HfApi(token=hub.token)
    api.create_repo("tester/listing")
    api.upload_folder(repo_id="tester/listing", folder_path=_model_folder(tmp_path / "m"), path_in_repo="ckpt")
    head = _upload(api, "tester/listing", "notes.md", b"hello", "Add notes")

    assert api.list_repo_files("tester/listing") == [
        ".gitattributes",
        "ckpt/README.md",
        "ckpt/config.json",
        "ckpt/model.safetensors",
        "notes.md",
    ]
    commits = api.list_repo_commits("tester/listing")
    assert [c.title for c in commits] == ["Add notes", "Upload folder using huggingface_hub", "initial commit"]
    assert commits[0].commit_id == head and commits[0].authors == ["tester"]

    info = api.model_info("tester/listing", files_metadata=True)
    assert info.sha == head and info.author == "tester"
    sizes = {s.rfilename: (s.size, s.lfs is not None) for s in info.siblings}
    assert sizes["notes.md"] == (5, False) and sizes["ckpt/model.safetensors"][1] is True

    top = {e.path: type(e).__name__ for e in api.list_repo_tree("tester/listing")}
    assert top == {"ckpt": "RepoFolder", ".gitattributes": "RepoFile", "notes.md": "RepoFile"}
    tree = list(api.list_repo_tree("tester/listing", path_in_repo="ckpt", expand=True))
    weights = next(e for e in tree if e.path == "ckpt/model.safetensors")
    assert weights.lfs is not None and weights.lfs.size == weights.size
    assert weights.last_commit is not None and weights.last_commit.title == "Upload folder using huggingface_hub"
    assert api.file_exists("tester/listing", "notes.md") and not api.file_exists("tester/listing", "nope.md")

    found = api.get_paths_info("tester/listing", ["notes.md", "ckpt", "missing.txt"])  # missing paths are skipped
    assert {(type(p).__name__, p.path) for p in found} == {("RepoFile", "notes.md"), ("RepoFolder", "ckpt")}
    api.delete_file("notes.md", "tester/listing")
    assert "notes.md" not in hub.repo_files("model", "tester/listing")
    with pytest.raises(EntryNotFoundError):
        api.delete_file("notes.md", "tester/listing")


def test_parent_commit_mismatch_is_rejected(hub: FakeHub) -> None:
    api = HfApi(token=hub.token)
    api.create_repo("tester/race")
    base = _upload(api, "tester/race", "a.txt", b"a", "a")
    _upload(api, "tester/race", "b.txt", b"b", "b")
    with pytest.raises(HfHubHTTPError) as stale:
        api.create_commit(
            "tester/race",
            [CommitOperationAdd("c.txt", b"c")],
            commit_message="c",
            parent_commit=base,
        )
    assert stale.value.response.status_code == 412
    assert "c.txt" not in hub.repo_files("model", "tester/race")

    pr = api.create_commit("tester/race", [CommitOperationAdd("c.txt", b"c")], commit_message="c", create_pr=True)
    assert pr.pr_num == 1 and "c.txt" not in hub.repo_files("model", "tester/race")
    assert hub.repo_files("model", "tester/race", "refs/pr/1")["c.txt"] == b"c"
    assert [p.ref for p in api.list_repo_refs("tester/race", include_pull_requests=True).pull_requests] == ["refs/pr/1"]


def test_dataset_push_to_hub_and_load_dataset_round_trip(hub: FakeHub) -> None:
    import datasets
    from PIL import Image

    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["angry", "happy"]),
            "image": datasets.Image(),
        }
    )
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    rows = {
        "text": ["so mad", "so glad", "meh"],
        "label": [0, 1, 1],
        "image": [Image.new("RGB", (4, 4), color) for color in colors],
    }
    datasets.Dataset.from_dict(rows, features=features).push_to_hub("tester/faces", token=hub.token)
    first = hub.repo_commits("dataset", "tester/faces")[0]
    assert any(p.endswith(".parquet") for p in hub.repo_files("dataset", "tester/faces"))
    assert hub.repo("dataset", "tester/faces").commits[first].files["README.md"].lfs is False

    loaded = datasets.load_dataset("tester/faces", split="train")
    assert loaded.features == features and loaded["text"] == rows["text"] and loaded["label"] == rows["label"]
    assert [img.getpixel((0, 0)) for img in loaded["image"]] == colors

    # A second push, then the first revision by commit sha still loads the old rows.
    datasets.Dataset.from_dict(
        {"text": ["new"], "label": [0], "image": [rows["image"][0]]}, features=features
    ).push_to_hub("tester/faces", token=hub.token)
    assert datasets.load_dataset("tester/faces", split="train")["text"] == ["new"]
    assert datasets.load_dataset("tester/faces", split="train", revision=first)["text"] == rows["text"]
    # datasets also tries the dataset viewer and an S3 download counter: the fixture refuses both like a network error.
    assert any("datasets-server" in url for url in hub.blocked_urls)


def test_load_dataset_from_a_csv_repo(hub: FakeHub) -> None:
    import datasets

    api = HfApi(token=hub.token)
    api.create_repo("tester/csv", repo_type="dataset")
    csv = b"text,label\ni am happy,happy\ni am sad,sad\n"
    _upload(api, "tester/csv", "train.csv", csv, "Add data", repo_type="dataset")
    loaded = datasets.load_dataset("tester/csv", split="train")
    assert loaded.to_dict() == {"text": ["i am happy", "i am sad"], "label": ["happy", "sad"]}


def test_hf_file_system_lists_and_reads_byte_ranges(hub: FakeHub) -> None:
    from huggingface_hub import HfFileSystem

    hub.add_repo("dataset", "tester/files", {"data/a.txt": b"0123456789", "data/sub/b.txt": b"xyz"}, private=True)
    fs = HfFileSystem(token=hub.token)
    root = "datasets/tester/files"
    assert sorted(fs.ls(f"{root}/data", detail=False)) == [f"{root}/data/a.txt", f"{root}/data/sub"]
    assert fs.glob(f"{root}/**/*.txt") == [f"{root}/data/a.txt", f"{root}/data/sub/b.txt"]
    assert fs.info(f"{root}/data/a.txt")["size"] == 10
    with fs.open(f"{root}/data/a.txt", "rb", block_size=4) as file:
        file.seek(3)
        assert file.read(4) == b"3456"
    assert any(status == 206 for _, _, status in hub.responses)  # served with `Range` requests
    assert fs.cat(f"{root}/data/sub/b.txt") == b"xyz"
    assert not HfFileSystem(token=False, skip_instance_cache=True).exists(f"{root}/data/a.txt")  # private


def test_wrong_token_is_a_401_everywhere(hub: FakeHub, tmp_path: Path) -> None:
    HfApi(token=hub.token).create_repo("tester/public")
    bad = HfApi(token="hf_wrong")
    for call in (
        lambda: bad.model_info("tester/public"),
        lambda: bad.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="tester/public"),
        lambda: hf_hub_download("tester/public", ".gitattributes", token="hf_wrong", cache_dir=tmp_path),
    ):
        with pytest.raises(HfHubHTTPError) as err:
            call()
        # "Invalid credentials in Authorization header" is NOT turned into RepositoryNotFoundError.
        assert err.value.response.status_code == 401 and not isinstance(err.value, RepositoryNotFoundError)
    with pytest.raises(HfHubHTTPError, match="Invalid user token"):
        bad.whoami()
    assert len(hub.repo_commits("model", "tester/public")) == 1


def test_private_repo_needs_the_owner_token(hub: FakeHub, tmp_path: Path) -> None:
    import datasets

    api = HfApi(token=hub.token)
    api.create_repo("tester/private-model", private=True)
    _upload(api, "tester/private-model", "config.json", b"{}", "config")

    anonymous, intruder = HfApi(token=False), HfApi(token=hub.other_token)
    for client, status in ((anonymous, 401), (intruder, 404)):
        with pytest.raises(RepositoryNotFoundError) as err:
            client.model_info("tester/private-model")
        assert err.value.response.status_code == status
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("tester/private-model", "config.json", cache_dir=tmp_path / "a")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("tester/private-model", cache_dir=tmp_path / "b")
    with pytest.raises(HfHubHTTPError) as denied:  # intruder may not write, even knowing the name
        intruder.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="tester/private-model")
    assert denied.value.response.status_code == 404
    path = hf_hub_download("tester/private-model", "config.json", token=hub.token, cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == b"{}"

    api.create_repo("tester/private-data", repo_type="dataset", private=True)
    _upload(api, "tester/private-data", "train.csv", b"a\n1\n", "data", repo_type="dataset")
    with pytest.raises(datasets.exceptions.DatasetNotFoundError):
        datasets.load_dataset("tester/private-data", split="train")
    assert datasets.load_dataset("tester/private-data", split="train", token=hub.token)["a"] == [1]

    with pytest.raises(HfHubHTTPError) as read_only:
        HfApi(token=hub.read_token).upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="tester/private-model")
    assert read_only.value.response.status_code == 403


def test_commit_500_is_not_retried_and_leaves_no_commit(hub: FakeHub) -> None:
    api = HfApi(token=hub.token)
    api.create_repo("tester/flaky")
    before = hub.repo_commits("model", "tester/flaky")
    hub.fail_next("POST", r"/commit/", 500)
    with pytest.raises(HfHubHTTPError) as err:
        _upload(api, "tester/flaky", "a.txt", b"a", "a")
    assert err.value.response.status_code == 500
    assert sum("/commit/" in p for _, p in hub.requests) == 1  # create_commit's POST is sent once: no retry
    assert hub.repo_commits("model", "tester/flaky") == before
    _upload(api, "tester/flaky", "a.txt", b"a", "a")  # the failure was one-shot: trying again works
    assert hub.repo_files("model", "tester/flaky")["a.txt"] == b"a"


def test_preupload_503_is_retried_by_http_backoff(hub: FakeHub) -> None:
    api = HfApi(token=hub.token)
    api.create_repo("tester/retried")
    hub.fail_next("POST", r"/preupload/", 503)
    started = time.monotonic()
    _upload(api, "tester/retried", "a.txt", b"a", "a")
    assert sum("/preupload/" in p for _, p in hub.requests) == 2
    assert time.monotonic() - started >= 1.0  # http_backoff waits 1 s, then 2, 4, 8, 8 (5 retries)
    assert hub.repo_files("model", "tester/retried")["a.txt"] == b"a"


def test_hub_down_falls_back_to_the_cache(hub: FakeHub, tmp_path: Path) -> None:
    api = HfApi(token=hub.token)
    api.create_repo("tester/cached")
    _upload(api, "tester/cached", "config.json", b"{}", "config")
    cached = hf_hub_download("tester/cached", "config.json", cache_dir=tmp_path)

    hub.fail_next("HEAD", r"/resolve/", 500)  # a failed HEAD with the file cached: the cached copy, no retry
    hub.clear_requests()
    assert hf_hub_download("tester/cached", "config.json", cache_dir=tmp_path) == cached
    assert hub.requests == [("HEAD", "/tester/cached/resolve/main/config.json")]

    hub.fail_next("HEAD", r"/resolve/", 500)  # not cached: the HEAD is retried (with backoff), then downloaded
    hub.clear_requests()
    fresh = hf_hub_download("tester/cached", "config.json", cache_dir=tmp_path / "empty")
    assert Path(fresh).read_bytes() == b"{}" and [m for m, _ in hub.requests] == ["HEAD", "HEAD", "GET"]

    hub.fail_next("HEAD", r"/resolve/", 401)  # nothing cached: a 401 (or RepositoryNotFound) is raised as is...
    with pytest.raises(HfHubHTTPError) as unauthorized:
        hf_hub_download("tester/cached", "config.json", cache_dir=tmp_path / "other")
    assert unauthorized.value.response.status_code == 401
    hub.fail_next("HEAD", r"/resolve/", 403)  # ...other non-retried errors become LocalEntryNotFoundError
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download("tester/cached", "config.json", cache_dir=tmp_path / "other")

    hub.delay_next("GET", r"^/api/models/tester/cached$", 0.5)
    with pytest.raises(httpx2.TimeoutException):  # a slow answer surfaces as an httpx2 timeout, not HfHubHTTPError
        api.model_info("tester/cached", timeout=0.1)


def test_space_variables_and_secrets(hub: FakeHub) -> None:
    api = HfApi(token=hub.token)
    api.create_repo("tester/app", repo_type="space", space_sdk="gradio")
    api.add_space_variable("tester/app", "MODEL_REPO", "tester/emotion", description="which model to serve")
    api.add_space_secret("tester/app", "HF_TOKEN", "hf_secret_value")
    assert hub.space_variables("tester/app") == {"MODEL_REPO": "tester/emotion"}
    assert hub.space_secrets("tester/app") == {"HF_TOKEN": "hf_secret_value"}
    assert api.get_space_variables("tester/app")["MODEL_REPO"].value == "tester/emotion"
    assert set(api.get_space_secrets("tester/app")) == {"HF_TOKEN"}  # values are never sent back
    assert [m for m, p in hub.requests if p.endswith(("/variables", "/secrets"))] == ["POST", "POST", "GET", "GET"]

    with pytest.raises(HfHubHTTPError) as err:
        HfApi(token=hub.other_token).add_space_secret("tester/app", "HF_TOKEN", "stolen")
    assert err.value.response.status_code == 403 and hub.space_secrets("tester/app")["HF_TOKEN"] == "hf_secret_value"
    api.delete_space_variable("tester/app", "MODEL_REPO")
    assert hub.space_variables("tester/app") == {}
    assert api.get_space_runtime("tester/app").stage == "RUNNING"


def test_seeded_repo_and_unknown_routes(hub: FakeHub, tmp_path: Path) -> None:
    sha = hub.add_repo("model", "tester/seeded", {"config.json": b"{}", "weights.bin": b"\x00\x01"})
    assert hub.repo("model", "tester/seeded").commits[sha].files["weights.bin"].lfs
    path = hf_hub_download("tester/seeded", "weights.bin", revision=sha, cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"\x00\x01"
    with pytest.raises(HfHubHTTPError):
        list(HfApi(token=hub.token).list_repo_likers("tester/seeded"))
    assert hub.unhandled == [("GET", "/api/models/tester/seeded/likers")]


def test_serve_hub_restores_the_offline_session(tmp_path: Path) -> None:
    import datasets.config

    def state() -> tuple[object, ...]:
        return (constants.ENDPOINT, constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET, constants.HF_HUB_CACHE)

    before = state() + (datasets.config.HF_ENDPOINT, datasets.config.HF_HUB_OFFLINE)
    with pytest.MonkeyPatch.context() as mp, serve_hub(mp, tmp_path) as server:
        assert constants.ENDPOINT == datasets.config.HF_ENDPOINT == server.url
        assert constants.HF_HUB_OFFLINE is False and constants.HF_HUB_DISABLE_XET is True
        assert Path(constants.HF_HUB_CACHE).is_relative_to(tmp_path)
    assert state() + (datasets.config.HF_ENDPOINT, datasets.config.HF_HUB_OFFLINE) == before
