"""Account and repo-management routes of the fake Hub: whoami, create/delete, settings, branches, tags, Space variables."""

from __future__ import annotations

import hashlib
import re

import yaml

from tests.hub_server.protocol import Request, Response, _json
from tests.hub_server.store import (
    NAME_RE,
    PREFIXES,
    SDKS,
    HubError,
    _iso,
    _now,
)


class RepoRoutes:
    """Mixed into `FakeHub`: accounts, repos and refs (runs under the hub's lock)."""

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
