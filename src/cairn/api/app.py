"""The ASGI application: every ml v1 resource module registered on one router."""

from __future__ import annotations

from pathlib import Path

from cairn.api import (
    iam,
    identity,
    info,
    jobs,
    models,
    operations,
    prediction_logs,
    projects,
    storage,
    studies,
)
from cairn.api import logging as logging_api
from cairn.api.gate import Gate
from cairn.api.http import AsgiApp, Router
from cairn.services.platform import Platform


def create_app(
    platform: Platform,
    *,
    predict_max_bytes: int,
    home: Path,
    storage_root: Path,
    authentication: bool = True,
    allowed_hosts: tuple[str, ...] = (),
    allowed_origins: tuple[str, ...] = (),
) -> AsgiApp:
    router = Router()
    projects.register(router, platform, predict_max_bytes=predict_max_bytes)
    jobs.register(router, platform)
    models.register(router, platform)
    operations.register(router, platform)
    studies.register(router, platform)
    storage.register(router, platform, spool_dir=home / "uploads")
    info.register(router, home=home, storage_root=storage_root)
    iam.register(router, platform)
    identity.register(router, platform)
    logging_api.register(router, platform)
    prediction_logs.register(router, platform)
    platform.access.enforcing = authentication
    gate = Gate(
        platform.identity,
        platform.access,
        authentication=authentication,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
    )
    return AsgiApp(router, gate, on_startup=platform.start, on_shutdown=platform.stop)


def permission_table(router: Router) -> str:
    """The route → permission table as Markdown (docs/access.md prints it; a test checks)."""
    lines = ["| Method | Path | Permission | Checked on |", "|---|---|---|---|"]
    for route in router.routes:
        access = route.access
        if access.public:
            permission, on = "none (public)", "—"
        elif access.resource is None:
            permission, on = "any valid credential", "—"
        else:
            sample = {"name": "P/models/M", "project": "P", "model": "M", "job": "J",
                      "organization": "cairn", "userProject": "P"}  # fmt: skip
            permission = access.permission_for(sample) or ""
            if callable(access.permission):
                permission = "ml.models.predict (model) / ml.versions.predict (version)"
            on = access.resource(sample)
        lines.append(f"| {route.method} | `{route.template}` | {permission} | `{on}` |")
    return "\n".join(lines) + "\n"
