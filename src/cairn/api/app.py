"""The ASGI application: every ml v1 resource module registered on one router."""

from __future__ import annotations

from pathlib import Path

from cairn.api import info, jobs, models, operations, projects, storage
from cairn.api.http import AsgiApp, Router
from cairn.services.platform import Platform


def create_app(
    platform: Platform, *, predict_max_bytes: int, home: Path, storage_root: Path
) -> AsgiApp:
    router = Router()
    projects.register(router, platform, predict_max_bytes=predict_max_bytes)
    jobs.register(router, platform)
    models.register(router, platform)
    operations.register(router, platform)
    storage.register(router, platform, spool_dir=home / "uploads")
    info.register(router, home=home, storage_root=storage_root)
    return AsgiApp(router, on_startup=platform.start, on_shutdown=platform.stop)
