"""Upload routes of the fake Hub: preupload, the LFS batch/upload protocol and NDJSON commits."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
from typing import Any

from tests.hub_server.protocol import Request, Response, _json
from tests.hub_server.store import (
    PREFIXES,
    Blob,
    HubError,
    needs_lfs,
)


class UploadRoutes:
    """Mixed into `FakeHub`: what `upload_file`/`create_commit` send (runs under the hub's lock)."""

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
