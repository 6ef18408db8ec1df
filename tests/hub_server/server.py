"""The fake Hub server: lifecycle, test helpers (seeding, failure/delay injection), auth and dispatch, and the HTTP adapter."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import traceback
from collections.abc import Collection, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.hub_server.protocol import Request, Response, _json, _Rule, _split_rev
from tests.hub_server.reads import ReadRoutes
from tests.hub_server.repos import RepoRoutes
from tests.hub_server.store import (
    GITATTRIBUTES,
    OTHER_TOKEN,
    PREFIXES,
    READ_TOKEN,
    TOKEN,
    TYPES,
    Blob,
    Commit,
    HubError,
    Repo,
    _now,
    needs_lfs,
)
from tests.hub_server.uploads import UploadRoutes


class FakeHub(RepoRoutes, UploadRoutes, ReadRoutes):
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
