"""The composition root: build every component from Settings and serve the API."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO, Any

from cairn.api.app import create_app
from cairn.api.http import AsgiApp
from cairn.config import Settings
from cairn.domain.errors import ApiError, Code
from cairn.services.platform import Platform, build_platform
from cairn.serving import ServingManager
from cairn.storage import BucketStorage
from cairn.store import MetadataStore
from cairn.training import TrainingRunner

log = logging.getLogger("cairn.server")


def lock_home(home: Path) -> IO[str]:
    """Hold an exclusive lock on the home: two servers must never drive the same state."""
    home.mkdir(parents=True, exist_ok=True)
    handle = (home / "server.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ApiError(
            Code.FAILED_PRECONDITION,
            f"Another Cairn server is already using {home}. Stop it first, "
            "or start this one with a different --home.",
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def build_app(settings: Settings) -> tuple[AsgiApp, Platform]:
    """Wire the store, storage, engines and services into the ASGI app."""
    for path in (settings.home, settings.storage_root, settings.jobs_root, settings.models_root):
        path.mkdir(parents=True, exist_ok=True)
    store = MetadataStore(settings.sqlalchemy_url)
    storage = BucketStorage(settings.storage_root)
    runner = TrainingRunner(settings.jobs_root, settings.envs_root, storage)
    serving = ServingManager(settings.home / "serving")
    platform = build_platform(
        store,
        storage,
        runner,
        serving,
        models_root=settings.models_root,
        max_running_jobs=settings.max_running_jobs,
        max_nodes_per_version=settings.max_nodes_per_version,
    )
    app = create_app(
        platform,
        predict_max_bytes=settings.predict_max_bytes,
        home=settings.home,
        storage_root=settings.storage_root,
    )

    def shutdown() -> None:
        try:
            platform.stop()
        finally:
            serving.shutdown()
            store.close()

    app_any: Any = app
    app_any._on_shutdown = shutdown
    return app, platform


def serve(settings: Settings) -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    lock = lock_home(settings.home)
    try:
        app, _ = build_app(settings)
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            log_level="warning",
            access_log=False,
        )
    finally:
        lock.close()
