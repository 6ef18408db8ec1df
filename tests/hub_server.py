"""A fake Hugging Face Hub on 127.0.0.1 for tests: the HTTP API subset that `huggingface_hub` and `datasets` use.

Serves models, datasets and Spaces from memory: repo creation, preupload + LFS batch/upload/verify + NDJSON commits,
`resolve` downloads (HEAD/GET/Range), repo info, tree, paths-info, commits, refs, branches, tags, Space variables and
secrets. Every commit keeps a full snapshot, so branches, tags and 40-hex commit shas all resolve. Errors carry the
Hub's `X-Error-Code`/`X-Error-Message` headers so the real clients raise their typed errors.

Use the `hub` fixture (`from tests.hub_server import hub as hub`; the redundant alias keeps ruff's F401 and F811
quiet where tests take a `hub` argument): it starts a server, points the
already-imported clients at it, switches them online (the test session runs with `HF_HUB_OFFLINE=1`), disables Xet,
uses a fresh `HF_HOME`, blocks any Hub-client request to another host, and restores everything afterwards.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
import yaml

TOKEN = "hf_fake_tester_write"
OTHER_TOKEN = "hf_fake_intruder_write"
READ_TOKEN = "hf_fake_tester_read"
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
SDKS = ("gradio", "streamlit", "docker", "static")
# Files the Hub's default .gitattributes sends to LFS (plus binary or >= 10 MiB content, like the Hub).
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


@dataclass
class Request:
    """A parsed request: unquoted path segments, query, lower-cased headers, body and the token's user."""

    method: str
    path: str
    segs: list[str]
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    user: str | None
    can_write_token: bool

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            raise HubError(400, "Invalid JSON body") from None

    def flag(self, name: str) -> bool:
        return (self.query.get(name) or ["false"])[0].lower() in ("1", "true")


@dataclass
class Response:
    """An answer to send back."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


@dataclass
class _Rule:
    """A pending `fail_next`/`delay_next` rule."""

    method: str
    pattern: re.Pattern[str]
    times: int
    status: int = 500
    seconds: float = 0.0


def _split_rev(parts: list[str]) -> tuple[str, list[str]]:
    """Revision segment (quoted as one, or an unquoted `refs/x/y`) and the rest of the path."""
    if not parts:
        raise HubError(404, "Missing revision", "RevisionNotFound")
    if parts[0] == "refs" and len(parts) >= 3:
        return "/".join(parts[:3]), parts[3:]
    return parts[0], parts[1:]


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


class FakeHub:
    """In-memory Hub server; use as a context manager or `start()`/`stop()`.

    `tokens` maps token -> user name (write tokens); `read_tokens` likewise but read-only; `orgs` maps an organization
    to the users who may write to it. Defaults: `TOKEN` is user "tester" (member of org "emotion-org"),
    `OTHER_TOKEN` is user "intruder", `READ_TOKEN` is a read-only token of "tester".
    """

    def __init__(
        self,
        tokens: Mapping[str, str] | None = None,
        *,
        read_tokens: Mapping[str, str] | None = None,
        orgs: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.tokens = dict(tokens if tokens is not None else {TOKEN: "tester", OTHER_TOKEN: "intruder"})
        self.read_tokens = dict(read_tokens if read_tokens is not None else {READ_TOKEN: "tester"})
        self.orgs = {org: set(users) for org, users in (orgs or {"emotion-org": {"tester"}}).items()}
        self.token, self.other_token, self.read_token = TOKEN, OTHER_TOKEN, READ_TOKEN
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []  # (method, raw path without query), every request received
        self.responses: list[tuple[str, str, int]] = []  # (method, raw path, status) of every answer
        self.unhandled: list[tuple[str, str]] = []  # requests no route matched (answered 404)
        self.errors: list[str] = []  # tracebacks of crashes inside the fake (answered 500): bugs in this file
        self.blocked_urls: list[str] = []  # Hub-client requests to other hosts, refused by the `hub` fixture
        self._failures: list[_Rule] = []
        self._delays: list[_Rule] = []
        self._lock = threading.RLock()
        self._secret = secrets.token_hex(16)
        self._counter = 0
        self.url = ""  # "http://127.0.0.1:<port>" once started
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> FakeHub:
        """Listen on a free port of 127.0.0.1 and serve in a daemon thread."""
        handler = type("_BoundHandler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        serve, quick = self._httpd.serve_forever, {"poll_interval": 0.05}  # a quick shutdown()
        self._thread = threading.Thread(target=serve, kwargs=quick, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --------------------------------------------------------------------------------------- test helpers
    def fail_next(self, method: str, path_regex: str, status: int = 500, times: int = 1) -> None:
        """Answer the next `times` requests matching `method` and `re.search(path_regex, raw_path)` with `status`."""
        with self._lock:
            self._failures.append(_Rule(method.upper(), re.compile(path_regex), times, status=status))

    def delay_next(self, method: str, path_regex: str, seconds: float, times: int = 1) -> None:
        """Sleep `seconds` before handling the next `times` matching requests."""
        with self._lock:
            self._delays.append(_Rule(method.upper(), re.compile(path_regex), times, seconds=seconds))

    def clear_requests(self) -> None:
        """Empty `requests` and `responses`."""
        with self._lock:
            self.requests.clear()
            self.responses.clear()

    def add_repo(
        self,
        repo_type: str,
        repo_id: str,
        files: Mapping[str, bytes] | None = None,
        *,
        private: bool = False,
        sdk: str | None = None,
    ) -> str:
        """Create a repo directly (no HTTP), optionally with a commit of `files`; returns the head commit sha."""
        with self._lock:
            repo = self._new_repo(repo_type, repo_id, private, sdk)
            if files:
                self.commit_files(repo_type, repo_id, files)
            return repo.branches["main"]

    def commit_files(
        self,
        repo_type: str,
        repo_id: str,
        files: Mapping[str, bytes | None],
        message: str = "Seed",
        branch: str = "main",
    ) -> str:
        """Commit `files` directly (`None` deletes a path); returns the new commit sha."""
        with self._lock:
            repo = self._repo_or_raise(repo_type, repo_id)
            tree = dict(repo.commits[repo.branches[branch]].files)
            for path, content in files.items():
                if content is None:
                    tree.pop(path, None)
                else:
                    tree[path] = Blob(content, needs_lfs(path, len(content), content))
            return self._commit(repo, branch, tree, message, "", repo.namespace).oid

    def repo_files(self, repo_type: str, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """`{path: content}` of a repo at a branch, tag or commit sha."""
        with self._lock:
            commit = self._repo_or_raise(repo_type, repo_id).resolve(revision)
            return {path: blob.content for path, blob in commit.files.items()}

    def repo_commits(self, repo_type: str, repo_id: str, revision: str = "main") -> list[str]:
        """Commit shas from `revision` back to the repo's first commit."""
        with self._lock:
            repo = self._repo_or_raise(repo_type, repo_id)
            return [commit.oid for commit in self._history(repo, repo.resolve(revision))]

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        """The stored repo (branches, tags, commits, private, sdk, variables, secrets)."""
        return self._repo_or_raise(repo_type, repo_id)

    def space_variables(self, repo_id: str) -> dict[str, str]:
        """`{key: value}` of a Space's variables."""
        return {key: item["value"] for key, item in self._repo_or_raise("space", repo_id).variables.items()}

    def space_secrets(self, repo_id: str) -> dict[str, str]:
        """`{key: value}` of a Space's secrets (the API never sends values back; this does)."""
        return {key: item["value"] for key, item in self._repo_or_raise("space", repo_id).secrets.items()}

    # ----------------------------------------------------------------------------------------- internals
    def _repo_or_raise(self, repo_type: str, repo_id: str) -> Repo:
        try:
            return self.repos[(repo_type, repo_id)]
        except KeyError:
            raise KeyError(f"No {repo_type} repo {repo_id!r} on the fake hub") from None

    def _new_repo(self, repo_type: str, repo_id: str, private: bool, sdk: str | None) -> Repo:
        repo = Repo(type=repo_type, id=repo_id, private=private, sdk=sdk)
        self.repos[(repo_type, repo_id)] = repo
        files = {".gitattributes": Blob(GITATTRIBUTES, lfs=False)}
        if repo_type == "space":
            title = repo_id.split("/")[1]
            readme = f"---\ntitle: {title}\nemoji: 🚀\ncolorFrom: blue\ncolorTo: red\nsdk: {sdk}\npinned: false\n---\n"
            files["README.md"] = Blob(readme.encode(), lfs=False)
        self._commit(repo, "main", files, "initial commit", "", repo.namespace)
        return repo

    def _commit(self, repo: Repo, branch: str, files: dict[str, Blob], title: str, message: str, author: str) -> Commit:
        self._counter += 1
        parent = repo.branches.get(branch)
        seed = f"{repo.type}/{repo.id}/{parent}/{self._counter}/{time.time_ns()}/{title}"
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, title, message, author, _now(), files)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    def _history(self, repo: Repo, commit: Commit) -> list[Commit]:
        out: list[Commit] = []
        current: Commit | None = commit
        while current is not None:
            out.append(current)
            current = repo.commits.get(current.parent) if current.parent else None
        return out

    def _can_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (user == namespace or user in self.orgs.get(namespace, ()))

    def _repo_for(self, req: Request, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        """The repo if `req.user` may read it (and write it with `write`), else the Hub's 401/403/404 answer."""
        repo = self.repos.get((repo_type, repo_id))
        visible = repo is not None and (not repo.private or self._can_write(req.user, repo.namespace))
        if repo is None or not visible:
            # Like the Hub: a missing or hidden repo is 401 without a token, 404 with one, both `RepoNotFound`.
            raise HubError(401 if req.user is None else 404, "Repository not found", "RepoNotFound")
        if write:
            if req.user is None:
                raise HubError(401, "You must be authenticated to write to this repository")
            if not self._can_write(req.user, repo.namespace) or not req.can_write_token:
                raise HubError(403, f"You don't have the rights to write to {repo_type}s/{repo_id}")
        return repo

    def _repo_url(self, repo: Repo) -> str:
        return f"{self.url}/{PREFIXES[repo.type]}{repo.id}"

    # ------------------------------------------------------------------------------------------ dispatch
    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request (called by the HTTP handler thread) and log it."""
        split = urlsplit(raw_path)
        path = split.path
        with self._lock:
            self.requests.append((method, path))
            delay = self._take(self._delays, method, path)
            failure = self._take(self._failures, method, path)
        if delay is not None:
            time.sleep(delay.seconds)
        if failure is not None:
            response = _json({"error": "Injected failure"}, failure.status, {"X-Error-Message": "Injected failure"})
        else:
            response = self._answer(method, path, split.query, headers, body)
        with self._lock:
            self.responses.append((method, path, response.status))
        return response

    def _answer(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> Response:
        try:
            auth = headers.get("authorization") or ""
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            user = (self.tokens.get(token) or self.read_tokens.get(token)) if token else None
            if token and user is None:
                raise HubError(401, "Invalid credentials in Authorization header")
            segs = [unquote(part) for part in path.strip("/").split("/")] if path.strip("/") else []
            params = parse_qs(query, keep_blank_values=True)
            req = Request(method, path, segs, params, headers, body, user, token in self.tokens)
            with self._lock:
                return self._route(req)
        except HubError as err:
            header_safe = err.message.replace("\n", " ").encode("latin-1", "replace").decode("latin-1")
            error_headers = {"X-Error-Message": header_safe, **err.headers}
            if err.code:
                error_headers["X-Error-Code"] = err.code
            return _json({"error": err.message}, err.status, error_headers)
        except Exception:
            self.errors.append(traceback.format_exc())
            return _json({"error": "Fake hub internal error"}, 500)

    @staticmethod
    def _take(rules: list[_Rule], method: str, path: str) -> _Rule | None:
        for rule in rules:
            if rule.method == method and rule.pattern.search(path):
                rule.times -= 1
                if rule.times <= 0:
                    rules.remove(rule)
                return rule
        return None

    def _route(self, req: Request) -> Response:
        s, m = req.segs, req.method
        if s[:1] == ["api"]:
            if s[1:] == ["whoami-v2"] and m == "GET":
                return self._whoami(req)
            if s[1:] == ["validate-yaml"] and m == "POST":
                return self._validate_yaml(req)
            if s[1:] == ["repos", "create"] and m == "POST":
                return self._create_repo(req)
            if s[1:] == ["repos", "delete"] and m == "DELETE":
                return self._delete_repo(req)
            if len(s) >= 4 and s[1] in TYPES:
                return self._repo_api(req, TYPES[s[1]], f"{s[2]}/{s[3]}", s[4:])
        elif s[:1] == ["_lfs"] and len(s) == 2 and m == "PUT":
            return self._lfs_store(req, s[1])
        else:
            repo_type, rest = (TYPES[s[0]], s[1:]) if s and s[0] in ("datasets", "spaces") else ("model", s)
            if len(rest) >= 3 and rest[1].endswith(".git") and rest[2:5] == ["info", "lfs", "objects"] and m == "POST":
                repo_id = f"{rest[0]}/{rest[1].removesuffix('.git')}"
                return self._lfs_batch(req, repo_type, repo_id, rest[5:])
            if len(rest) >= 4 and rest[2] == "resolve" and m in ("GET", "HEAD"):
                return self._resolve(req, repo_type, f"{rest[0]}/{rest[1]}", rest[3:])
        self.unhandled.append((req.method, req.path))
        raise HubError(404, f"Fake hub: no route for {req.method} {req.path}")

    def _repo_api(self, req: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        m = req.method
        action = rest[0] if rest else ""
        if not rest and m == "GET":
            return self._info(req, repo_type, repo_id, "main")
        if action == "revision" and m == "GET":
            return self._info(req, repo_type, repo_id, _split_rev(rest[1:])[0])
        if action == "tree" and m == "GET":
            revision, path = _split_rev(rest[1:])
            return self._tree(req, repo_type, repo_id, revision, "/".join(path).strip("/"))
        if action == "paths-info" and m == "POST":
            return self._paths_info(req, repo_type, repo_id, _split_rev(rest[1:])[0])
        if action == "commits" and m == "GET":
            return self._commits(req, repo_type, repo_id, _split_rev(rest[1:])[0])
        if action == "refs" and m == "GET":
            return self._refs(req, repo_type, repo_id)
        if action == "preupload" and m == "POST":
            return self._preupload(req, repo_type, repo_id, _split_rev(rest[1:])[0])
        if action == "commit" and m == "POST":
            return self._create_commit(req, repo_type, repo_id, _split_rev(rest[1:])[0])
        if action == "branch" and len(rest) >= 2 and m in ("POST", "DELETE"):
            return self._branch(req, repo_type, repo_id, "/".join(rest[1:]))
        if action == "tag" and len(rest) >= 2 and m in ("POST", "DELETE"):
            return self._tag(req, repo_type, repo_id, "/".join(rest[1:]))
        if action == "settings" and m == "PUT":
            return self._settings(req, repo_type, repo_id)
        if repo_type == "space" and action in ("variables", "secrets") and len(rest) == 1:
            return self._space_kv(req, repo_id, action)
        if repo_type == "space" and action in ("runtime", "restart") and len(rest) == 1:
            self._repo_for(req, repo_type, repo_id, write=action == "restart")
            return _json(self._runtime())
        self.unhandled.append((req.method, req.path))
        raise HubError(404, f"Fake hub: no route for {req.method} {req.path}")

    # ------------------------------------------------------------------------------------------- routes
    def _whoami(self, req: Request) -> Response:
        if req.user is None:
            raise HubError(401, "Invalid username or password.")
        orgs = [
            {"type": "org", "name": org, "roleInOrg": "write"} for org, users in self.orgs.items() if req.user in users
        ]
        role = "write" if req.can_write_token else "read"
        return _json(
            {
                "type": "user",
                "id": hashlib.sha1(req.user.encode()).hexdigest()[:24],
                "name": req.user,
                "fullname": req.user.title(),
                "email": f"{req.user}@example.com",
                "emailVerified": True,
                "isPro": False,
                "orgs": orgs,
                "auth": {"type": "access_token", "accessToken": {"displayName": "fake-hub", "role": role}},
            }
        )

    def _validate_yaml(self, req: Request) -> Response:
        content = str(req.json().get("content", ""))
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
        try:
            data = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as err:
            raise HubError(400, f"Invalid metadata in README.md.\n- {err}") from None
        if data is not None and not isinstance(data, dict):
            raise HubError(400, "Invalid metadata in README.md.\n- YAML metadata must be a mapping")
        return _json({"errors": [], "warnings": []})

    def _create_repo(self, req: Request) -> Response:
        body = req.json()
        repo_type = body.get("type") or "model"
        name, org = str(body.get("name") or ""), body.get("organization")
        if req.user is None:
            raise HubError(401, "You must be authenticated to create a repository")
        if repo_type not in PREFIXES:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        if not NAME_RE.match(name) or "--" in name or ".." in name or name.endswith((".git", ".")):
            raise HubError(400, f"Invalid repo name {name!r}")
        namespace = org or req.user
        if not self._can_write(req.user, namespace) or not req.can_write_token:
            raise HubError(403, f'You don\'t have the rights to create a {repo_type} under the namespace "{namespace}"')
        repo_id = f"{namespace}/{name}"
        if (repo_type, repo_id) in self.repos:
            url = self._repo_url(self.repos[(repo_type, repo_id)])
            return _json({"error": f"You already created this {repo_type} repo", "url": url}, 409)
        sdk = body.get("sdk")
        if repo_type == "space" and sdk not in SDKS:
            raise HubError(400, f"Invalid Space SDK {sdk!r}")
        private = body.get("visibility", "private" if body.get("private") else "public") != "public"
        repo = self._new_repo(repo_type, repo_id, private, sdk if repo_type == "space" else None)
        for key, target in (("variables", repo.variables), ("secrets", repo.secrets)):
            for item in body.get(key) or []:
                target[item["key"]] = {
                    "value": item["value"],
                    "description": item.get("description"),
                    "updatedAt": _iso(_now()),
                }
        return _json(
            {"url": self._repo_url(repo), "name": repo_id, "id": hashlib.sha1(repo_id.encode()).hexdigest()[:24]}
        )

    def _delete_repo(self, req: Request) -> Response:
        body = req.json()
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or req.user}/{body.get('name')}"
        self._repo_for(req, repo_type, repo_id, write=True)
        del self.repos[(repo_type, repo_id)]
        return Response(200)

    def _settings(self, req: Request, repo_type: str, repo_id: str) -> Response:
        repo = self._repo_for(req, repo_type, repo_id, write=True)
        body = req.json()
        if "private" in body:
            repo.private = bool(body["private"])
        if "visibility" in body:
            repo.private = body["visibility"] != "public"
        if "gated" in body:
            repo.gated = body["gated"]
        return _json({})

    def _info(self, req: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo_for(req, repo_type, repo_id)
        commit = repo.resolve(revision)
        blobs = req.flag("blobs")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=len(blob.content), blobId=blob.oid)
                if blob.lfs:
                    sibling["lfs"] = {
                        "size": len(blob.content),
                        "sha256": blob.sha256,
                        "pointerSize": len(blob.pointer),
                    }
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo.namespace,
            "sha": commit.oid,
            "lastModified": _iso(commit.date),
            "createdAt": _iso(repo.created_at),
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(len(blob.content) for blob in commit.files.values()),
        }
        if (card := _card_data(commit.files)) is not None:
            info["cardData"] = card
        if repo_type == "space":
            host = repo_id.replace("/", "-").replace("_", "-").lower()
            info.update(sdk=repo.sdk, subdomain=host, host=f"https://{host}.hf.space", runtime=self._runtime())
        return _json(info)

    @staticmethod
    def _runtime() -> dict[str, Any]:
        hardware = {"current": "cpu-basic", "requested": "cpu-basic"}
        return {"stage": "RUNNING", "hardware": hardware, "storage": None, "gcTimeout": 172800, "devMode": False}

    def _entries(self, repo: Repo, commit: Commit, expand: bool) -> dict[str, dict[str, Any]]:
        """Every file and directory of a commit as tree entries, keyed by path."""
        entries: dict[str, dict[str, Any]] = {}
        children: dict[str, list[str]] = {}
        for path, blob in commit.files.items():
            entry: dict[str, Any] = {"type": "file", "oid": blob.oid, "size": len(blob.content), "path": path}
            if blob.lfs:
                entry["lfs"] = {"oid": blob.sha256, "size": len(blob.content), "pointerSize": len(blob.pointer)}
            entries[path] = entry
            parts = path.split("/")
            for depth in range(1, len(parts)):
                children.setdefault("/".join(parts[:depth]), []).append(f"{path}:{blob.oid}")
        for folder, items in children.items():
            oid = hashlib.sha1("\n".join(sorted(items)).encode()).hexdigest()
            entries[folder] = {"type": "directory", "oid": oid, "size": 0, "path": folder}
        if expand:
            history = self._history(repo, commit)
            for path, entry in entries.items():
                last = history[-1]
                for newer, older in zip(history, history[1:]):
                    if self._subtree(newer, path) != self._subtree(older, path):
                        last = newer
                        break
                entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": _iso(last.date)}
        return entries

    @staticmethod
    def _subtree(commit: Commit, path: str) -> dict[str, str]:
        return {p: b.oid for p, b in commit.files.items() if p == path or p.startswith(path + "/")}

    def _tree(self, req: Request, repo_type: str, repo_id: str, revision: str, path: str) -> Response:
        repo = self._repo_for(req, repo_type, repo_id)
        commit = repo.resolve(revision)
        entries = self._entries(repo, commit, req.flag("expand"))
        if path and entries.get(path, {}).get("type") != "directory":
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        prefix = f"{path}/" if path else ""
        recursive = req.flag("recursive")
        selected = [
            entry
            for entry_path, entry in sorted(entries.items())
            if entry_path.startswith(prefix) and (recursive or "/" not in entry_path[len(prefix) :])
        ]
        return _json(sorted(selected, key=lambda entry: (entry["type"] != "directory", entry["path"])))

    def _paths_info(self, req: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo_for(req, repo_type, repo_id)
        commit = repo.resolve(revision)
        if "json" in req.headers.get("content-type", ""):
            body = req.json()
            paths, expand = body.get("paths") or [], bool(body.get("expand"))
        else:
            form = parse_qs(req.body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), (form.get("expand") or ["false"])[0].lower() in ("1", "true")
        entries = self._entries(repo, commit, expand)
        return _json([entries[p.strip("/")] for p in paths if p.strip("/") in entries])

    def _commits(self, req: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo_for(req, repo_type, repo_id)
        return _json(
            [
                {
                    "id": commit.oid,
                    "title": commit.title,
                    "message": commit.message,
                    "authors": [{"user": commit.author, "avatar": None}],
                    "date": _iso(commit.date),
                }
                for commit in self._history(repo, repo.resolve(revision))
            ]
        )

    def _refs(self, req: Request, repo_type: str, repo_id: str) -> Response:
        repo = self._repo_for(req, repo_type, repo_id)

        def refs(items: Mapping[str, str], kind: str) -> list[dict[str, str]]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": oid} for n, oid in sorted(items.items())]

        prs = {n: oid for n, oid in repo.branches.items() if n.startswith("refs/pr/")}
        branches = {n: oid for n, oid in repo.branches.items() if n not in prs}
        pulls = [{"name": n.split("/")[-1], "ref": n, "targetCommit": oid} for n, oid in sorted(prs.items())]
        return _json(
            {
                "branches": refs(branches, "heads"),
                "tags": refs(repo.tags, "tags"),
                "converts": [],
                "pullRequests": pulls,
            }
        )

    def _branch(self, req: Request, repo_type: str, repo_id: str, branch: str) -> Response:
        repo = self._repo_for(req, repo_type, repo_id, write=True)
        if req.method == "DELETE":
            if branch not in repo.branches:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            if branch == "main":
                raise HubError(403, "Cannot delete the default branch")
            del repo.branches[branch]
            return _json({})
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        starting = req.json().get("startingPoint") or "main"
        repo.branches[branch] = repo.resolve(starting).oid
        return _json({})

    def _tag(self, req: Request, repo_type: str, repo_id: str, revision_or_tag: str) -> Response:
        repo = self._repo_for(req, repo_type, repo_id, write=True)
        if req.method == "DELETE":
            if repo.tags.pop(revision_or_tag, None) is None:
                raise HubError(404, f"Invalid rev id: {revision_or_tag}", "RevisionNotFound")
            return _json({})
        tag = str(req.json().get("tag") or "")
        if not tag:
            raise HubError(400, "Missing tag name")
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = repo.resolve(revision_or_tag).oid
        return _json({})

    def _space_kv(self, req: Request, repo_id: str, kind: str) -> Response:
        write = req.method != "GET" or kind == "secrets"
        repo = self._repo_for(req, "space", repo_id, write=write)
        store = repo.variables if kind == "variables" else repo.secrets
        body = req.json() if req.method != "GET" else {}
        if req.method == "POST":
            key = str(body.get("key") or "")
            if not key:
                raise HubError(400, "Missing key")
            store[key] = {
                "value": str(body.get("value", "")),
                "description": body.get("description"),
                "updatedAt": _iso(_now()),
            }
        elif req.method == "DELETE":
            store.pop(str(body.get("key")), None)
        elif req.method != "GET":
            raise HubError(405, f"Method {req.method} not allowed")
        if kind == "secrets":
            return _json({k: {"description": v["description"], "updatedAt": v["updatedAt"]} for k, v in store.items()})
        return _json(store)

    def _preupload(self, req: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo_for(req, repo_type, repo_id, write=True)
        head = repo.resolve(revision if revision in repo.branches or not req.flag("create_pr") else "main")
        body = req.json()
        ignore = [line.strip() for line in str(body.get("gitIgnore") or "").splitlines()]
        ignore = [line for line in ignore if line and not line.startswith("#")]
        files = []
        for item in body.get("files") or []:
            path, size = str(item["path"]), int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample") or "")
            existing = head.files.get(path)
            name = path.rsplit("/", 1)[-1]
            files.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if needs_lfs(path, size, sample) else "regular",
                    "shouldIgnore": any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in ignore),
                    "oid": existing.upload_oid if existing else None,
                }
            )
        return _json({"files": files, "commitOid": head.oid})

    def _lfs_batch(self, req: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        repo = self._repo_for(req, repo_type, repo_id, write=True)
        body = req.json()
        base = f"{self.url}/{PREFIXES[repo.type]}{repo.id}.git/info/lfs/objects"
        if rest == ["verify"]:
            oid, size = str(body.get("oid")), body.get("size")
            if oid not in self.lfs_objects or len(self.lfs_objects[oid]) != size:
                raise HubError(404, f"LFS object {oid} not found")
            return _json({})
        if rest != ["batch"] or body.get("operation") != "upload":
            raise HubError(400, "Only the LFS 'upload' batch operation is supported by the fake hub")
        objects = []
        for obj in body.get("objects") or []:
            oid, size = str(obj["oid"]), int(obj["size"])
            item: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.lfs_objects:
                signature = hmac.new(self._secret.encode(), oid.encode(), "sha256").hexdigest()
                item["actions"] = {
                    "upload": {"href": f"{self.url}/_lfs/{oid}?X-Amz-Signature={signature}", "expires_in": 3600},
                    "verify": {"href": f"{base}/verify", "header": {}, "expires_in": 3600},
                }
            objects.append(item)
        return _json(
            {"transfer": "basic", "objects": objects}, headers={"Content-Type": "application/vnd.git-lfs+json"}
        )

    def _lfs_store(self, req: Request, oid: str) -> Response:
        expected = hmac.new(self._secret.encode(), oid.encode(), "sha256").hexdigest()
        if not hmac.compare_digest((req.query.get("X-Amz-Signature") or [""])[0], expected):
            raise HubError(403, "SignatureDoesNotMatch")
        if hashlib.sha256(req.body).hexdigest() != oid:
            raise HubError(400, "Uploaded content does not match its sha256 oid")
        self.lfs_objects[oid] = req.body
        return Response(200, b"", {"ETag": f'"{hashlib.md5(req.body).hexdigest()}"'})

    def _create_commit(self, req: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo_for(req, repo_type, repo_id, write=True)
        lines = [json.loads(line) for line in req.body.decode().splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line.get("key") == "header"), None)
        if header is None or not header.get("summary"):
            raise HubError(400, "Missing commit header with a summary")
        branch, pr_url = revision, None
        if req.flag("create_pr"):
            number = 1 + sum(1 for name in repo.branches if name.startswith("refs/pr/"))
            branch = f"refs/pr/{number}"
            repo.branches[branch] = repo.resolve(revision).oid
            pr_url = f"{self._repo_url(repo)}/discussions/{number}"
        if branch not in repo.branches:
            repo.resolve(branch)  # 404 RevisionNotFound for a missing ref
            raise HubError(400, f"Can only commit to a branch, not to {branch!r}")
        head = repo.commits[repo.branches[branch]]
        parent = header.get("parentCommit")
        if parent and parent != head.oid:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(head.files)
        for line in lines:
            key, value = line.get("key"), line.get("value") or {}
            path = str(value.get("path", "")).strip("/")
            if key == "header":
                continue
            if key == "file":
                raw = str(value.get("content", ""))
                content = base64.b64decode(raw) if value.get("encoding") == "base64" else raw.encode()
                if needs_lfs(path, len(content), content):
                    raise HubError(
                        400, f"Your push was rejected because {path} must be stored with LFS (binary or large file)."
                    )
                files[path] = Blob(content, lfs=False)
            elif key == "lfsFile":
                oid = str(value.get("oid"))
                if oid not in self.lfs_objects:
                    raise HubError(
                        422, f"Your push was rejected because the LFS object {oid} of {path} was never uploaded."
                    )
                files[path] = Blob(self.lfs_objects[oid], lfs=True)
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            elif key == "deletedFolder":
                doomed = [p for p in files if p.startswith(path + "/")]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in doomed:
                    del files[p]
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        commit = self._commit(repo, branch, files, header["summary"], header.get("description") or "", req.user or "")
        return _json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self._repo_url(repo)}/commit/{commit.oid}",
                "hookOutput": "",
                "pullRequestUrl": pr_url,
            }
        )

    def _resolve(self, req: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        repo = self._repo_for(req, repo_type, repo_id)
        revision, path_parts = _split_rev(rest)
        commit = repo.resolve(revision)
        path = "/".join(path_parts)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{blob.oid}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
        }
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.content))})
        content, status = blob.content, 200
        wanted = req.headers.get("range")
        if wanted:
            match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", wanted)
            size = len(content)
            if not match or not any(match.groups()):
                raise HubError(416, "Invalid range", headers={"Content-Range": f"bytes */{size}"})
            first, last = match.groups()
            start, end = (
                (int(first), min(int(last or size - 1), size - 1)) if first else (max(size - int(last), 0), size - 1)
            )
            if start >= size or start > end:
                raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
            content, status = content[start : end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Response(status, content, headers)


class _Handler(BaseHTTPRequestHandler):
    """Thin HTTP/1.1 adapter around `FakeHub.handle`."""

    hub: FakeHub
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections close after this many seconds

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        body = self._read_body()
        headers = {key.lower(): value for key, value in self.headers.items()}
        response = self.hub.handle(self.command, self.path, headers, body)
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. timed out on a delayed answer)
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""


# ------------------------------------------------------------------------------------------------ client setup
def configure_clients(monkeypatch: pytest.MonkeyPatch, server: FakeHub, home: Path) -> None:
    """Point the (already imported) `huggingface_hub` and `datasets` at `server`, online, Xet off, caches in `home`.

    Both libraries read `HF_ENDPOINT`, `HF_HUB_OFFLINE`, `HF_HOME`... once at import, so setting the environment is
    not enough: the module constants and the objects built at import (`huggingface_hub.hf_api.api`, the default
    `hffs`, cached `HfFileSystem` instances, the pooled HTTP client) are patched too. Undone by `monkeypatch`.
    """
    import datasets.config as ds_config
    import huggingface_hub
    from huggingface_hub import HfFileSystem, constants, hf_api, hf_file_system
    from huggingface_hub.utils import _http

    url = server.url
    home.mkdir(parents=True, exist_ok=True)
    hub_cache, ds_cache = home / "hub", home / "datasets"
    for key in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_OIDC_RESOURCE",
        "HF_DATASETS_OFFLINE",
        "TRANSFORMERS_OFFLINE",
    ):
        monkeypatch.delenv(key, raising=False)
    env = {
        "HF_ENDPOINT": url,
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(hub_cache),
        "HF_DATASETS_CACHE": str(ds_cache),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    patches: dict[str, Any] = {
        "ENDPOINT": url,
        "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": constants.HF_URL_HOSTS | {"127.0.0.1"},
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(hub_cache),
        "HUGGINGFACE_HUB_CACHE": str(hub_cache),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HUGGINGFACE_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
    }
    for name, value in patches.items():
        monkeypatch.setattr(constants, name, value)
    # Copies taken with `from ..constants import X` at import time.
    for module, name, value in (
        ("huggingface_hub.utils._cache_manager", "HF_HUB_CACHE", str(hub_cache)),
        ("huggingface_hub.utils._cache_assets", "HF_ASSETS_CACHE", str(home / "assets")),
        ("huggingface_hub.utils._git_credential", "ENDPOINT", url),
    ):
        if module in sys.modules:
            monkeypatch.setattr(sys.modules[module], name, value)
    monkeypatch.setattr(_http, "_HUB_ORIGINS", _http._HUB_ORIGINS | {_http._url_origin(url)})
    monkeypatch.setattr(hf_api.api, "endpoint", url)  # behind `huggingface_hub.create_repo`, `model_info`, ...

    for name, value in {
        "HF_ENDPOINT": url,
        "HUB_DATASETS_URL": url + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False,
        "HF_CACHE_HOME": str(home),
        "HF_DATASETS_CACHE": ds_cache,
        "HF_MODULES_CACHE": home / "modules",
        "DOWNLOADED_DATASETS_PATH": ds_cache / "downloads",
        "EXTRACTED_DATASETS_PATH": ds_cache / "downloads" / "extracted",
    }.items():
        monkeypatch.setattr(ds_config, name, value)

    # Any Hub-client request to another host (the dataset viewer, S3 download counters...) fails like a network error.
    allowed = _http._url_origin(url)

    def guard(request: Any) -> None:
        if _http._url_origin(str(request.url)) != allowed:
            server.blocked_urls.append(str(request.url))
            raise _http.httpx2.ConnectError(f"fake hub: blocked request to {request.url}", request=request)

    def client_factory() -> Any:
        client = _http.default_client_factory()
        client.event_hooks["request"].insert(0, guard)
        return client

    monkeypatch.setattr(_http, "_GLOBAL_CLIENT_FACTORY", client_factory)
    _http.close_session()
    HfFileSystem.clear_instance_cache()
    fresh_fs = HfFileSystem(skip_instance_cache=True)
    monkeypatch.setattr(hf_file_system, "hffs", fresh_fs)
    if "hffs" in vars(huggingface_hub):
        monkeypatch.setattr(huggingface_hub, "hffs", fresh_fs)


@contextmanager
def serve_hub(monkeypatch: pytest.MonkeyPatch, home: Path, **server_kwargs: Any) -> Iterator[FakeHub]:
    """Start a `FakeHub(**server_kwargs)`, configure the clients for it, and clean both up on exit."""
    from huggingface_hub import HfFileSystem
    from huggingface_hub.utils import close_session

    server = FakeHub(**server_kwargs).start()
    try:
        configure_clients(monkeypatch, server, home)
        yield server
    finally:
        close_session()  # drop pooled keep-alive connections (and the guarded client)
        HfFileSystem.clear_instance_cache()
        server.stop()
    if server.errors:
        raise AssertionError("The fake hub crashed while serving:\n" + "\n".join(server.errors))


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    """A fresh fake Hub for one test, with huggingface_hub + datasets pointed at it and a temp `HF_HOME`."""
    with serve_hub(monkeypatch, tmp_path / "hf-home") as server:
        yield server
