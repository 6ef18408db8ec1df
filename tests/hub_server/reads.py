"""Read routes of the fake Hub: repo info, tree, paths-info, commits, refs and `resolve` downloads."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote

from tests.hub_server.protocol import Request, Response, _json, _split_rev
from tests.hub_server.store import (
    Commit,
    HubError,
    Repo,
    _card_data,
    _iso,
)


class ReadRoutes:
    """Mixed into `FakeHub`: answers what clients read (runs under the hub's lock)."""

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
