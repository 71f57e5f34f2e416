"""The platform's use cases, wired together once (by `cairn.server`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.services.jobs import JobService, Runner
from cairn.services.models import ModelService
from cairn.services.operations import OperationService
from cairn.services.predictions import PredictionService
from cairn.services.projects import ProjectService
from cairn.services.versions import VersionService


@dataclass
class Platform:
    projects: ProjectService
    jobs: JobService
    models: ModelService
    versions: VersionService
    operations: OperationService
    predictions: PredictionService
    storage: Any

    def start(self) -> None:
        """Recover what a previous run left: jobs, versions, then serve."""
        self.jobs.start()
        self.versions.start()

    def stop(self) -> None:
        self.versions.stop()
        self.jobs.stop()


def build_platform(
    store: Any,
    storage: Any,
    runner: Runner,
    serving: Any,
    *,
    models_root: Path,
    max_running_jobs: int = 4,
    max_nodes_per_version: int = 8,
) -> Platform:
    projects = ProjectService(store.runtime)
    operations = OperationService(store.operations, projects)
    models = ModelService(store.models, store.versions, projects, operations)
    versions = VersionService(store.versions, models, operations, serving, storage, models_root)
    return Platform(
        projects=projects,
        jobs=JobService(store.jobs, projects, runner, max_running_jobs=max_running_jobs),
        models=models,
        versions=versions,
        operations=operations,
        predictions=PredictionService(serving, models, versions),
        storage=storage,
    )
