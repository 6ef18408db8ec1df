"""The fake Hub's data: repos, their commits (full snapshots) and blobs, and the Hub's naming rules."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

TOKEN = "hf_fake_tester_write"


OTHER_TOKEN = "hf_fake_intruder_write"


READ_TOKEN = "hf_fake_tester_read"


TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}


PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}


SDKS = ("gradio", "streamlit", "docker", "static")


LFS_SUFFIXES = (
    ".7z .arrow .bin .bz2 .ckpt .ftz .gz .h5 .joblib .lz4 .mlmodel .model .msgpack .npy .npz .onnx .ot .parquet .pb "
    ".pickle .pkl .pt .pth .rar .safetensors .tar .tflite .tgz .wasm .xz .zip .zst .jpg .jpeg .png .gif .webp .mp3 "
    ".wav .flac .ogg .mp4 .avi .mkv .pdf"
).split()


LFS_MIN_SIZE = 10 * 1024 * 1024


GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES).encode()


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class HubError(Exception):
    """An HTTP error answer, shaped like the Hub's (JSON body + `X-Error-*` headers)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def needs_lfs(path: str, size: int, sample: bytes) -> bool:
    """The Hub's upload-mode rule: LFS extensions, binary content (a NUL byte) or >= 10 MiB go to LFS."""
    return path.lower().endswith(tuple(LFS_SUFFIXES)) or size >= LFS_MIN_SIZE or b"\0" in sample[:8000]


@dataclass
class Blob:
    """File content as stored in a commit, with its git (or LFS pointer) oid and sha256."""

    content: bytes
    lfs: bool
    sha256: str = ""
    oid: str = ""

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.content).hexdigest()
        self.oid = _git_oid(self.pointer if self.lfs else self.content)

    @property
    def pointer(self) -> bytes:
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.content)}\n".encode()
        )

    @property
    def upload_oid(self) -> str:
        """What `preupload` answers as the remote oid (sha256 for LFS files, git sha1 otherwise)."""
        return self.sha256 if self.lfs else self.oid


@dataclass
class Commit:
    """One commit: metadata plus the full snapshot of the repo's files."""

    oid: str
    parent: str | None
    title: str
    message: str
    author: str
    date: datetime
    files: dict[str, Blob]


@dataclass
class Repo:
    """A repo: refs (branches, tags) pointing into all its commits, plus Space variables and secrets."""

    type: str
    id: str
    private: bool
    sdk: str | None = None
    gated: bool | str = False
    created_at: datetime = field(default_factory=_now)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.id.split("/")[0]

    def resolve(self, revision: str) -> Commit:
        """Branch, tag, `refs/heads|tags/...` or full commit sha -> commit, else 404 RevisionNotFound."""
        for name in (revision, revision.removeprefix("refs/heads/"), revision.removeprefix("refs/tags/")):
            oid = self.branches.get(name) or self.tags.get(name)
            if oid:
                return self.commits[oid]
        if revision in self.commits:
            return self.commits[revision]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


def _card_data(files: Mapping[str, Blob]) -> dict[str, Any] | None:
    readme = files.get("README.md")
    if readme is None:
        return None
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme.content.decode("utf-8", "replace"), re.S)
    try:
        data = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None
