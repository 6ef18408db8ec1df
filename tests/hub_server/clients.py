"""Pointing the real `huggingface_hub` and `datasets` clients at a fake Hub, as pytest fixtures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.hub_server.server import FakeHub


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
