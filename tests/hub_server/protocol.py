"""Requests and responses as the fake Hub routes see them, and the path rules they share."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.hub_server.store import (
    HubError,
)


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
