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

from tests.hub_server.clients import configure_clients, hub, serve_hub
from tests.hub_server.server import FakeHub
from tests.hub_server.store import OTHER_TOKEN, READ_TOKEN, TOKEN, needs_lfs

__all__ = ["FakeHub", "OTHER_TOKEN", "READ_TOKEN", "TOKEN", "configure_clients", "hub", "needs_lfs", "serve_hub"]
