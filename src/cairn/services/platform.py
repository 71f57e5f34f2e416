"""The platform's use cases, wired together once (by `cairn.server`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cairn.domain.jobs import DEFAULT_MAX_REPLICAS
from cairn.services.access import AccessService
from cairn.services.identity import IdentityService, JobCredentialIssuer
from cairn.services.jobs import JobService, Runner
from cairn.services.locations import LocationOperations, LocationService
from cairn.services.models import ModelService
from cairn.services.operations import OperationService
from cairn.services.predictions import PredictionService
from cairn.services.projects import ProjectService
from cairn.services.request_paths import RequestPaths
from cairn.services.studies import StudyService
from cairn.services.tuning_jobs import TrialRunner, TuningJobs
from cairn.services.versions import VersionService
from cairn.tuning.early_stopping import should_stop
from cairn.tuning.strategies import strategy_for


class TrainingEngine(TrialRunner, Runner, Protocol):
    """The training runner as both plain jobs and tuning trials use it."""


@dataclass
class Platform:
    projects: ProjectService
    jobs: JobService
    models: ModelService
    versions: VersionService
    operations: OperationService
    predictions: PredictionService
    storage: Any
    access: AccessService
    identity: IdentityService
    locations: LocationService
    location_operations: LocationOperations
    studies: StudyService

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
    runner: TrainingEngine,
    serving: Any,
    *,
    models_root: Path,
    max_running_jobs: int = 4,
    max_nodes_per_version: int = 8,
    max_replicas: int = DEFAULT_MAX_REPLICAS,
    local_roots: Sequence[Path] = (),
    access_token_seconds: int = 3600,
    token_uri: str | None = None,
) -> Platform:
    """Wire the services; `token_uri` (the server's `/token`) enables jobs' credentials."""
    paths = RequestPaths(local_roots)
    projects = ProjectService(store.runtime)
    access = AccessService(store.policies, store.principals, store.audit)
    identity = IdentityService(
        store.principals, store.credentials, access, access_token_seconds=access_token_seconds
    )
    operations = OperationService(store.operations, projects)
    models = ModelService(store.models, store.versions, projects, operations)
    versions = VersionService(
        store.versions,
        models,
        operations,
        serving,
        storage,
        models_root,
        max_nodes=max_nodes_per_version,
        paths=paths,
    )
    jobs = JobService(
        store.jobs,
        projects,
        runner,
        max_running_jobs=max_running_jobs,
        max_replicas=max_replicas,
        paths=paths,
        credentials=None if token_uri is None else JobCredentialIssuer(identity, token_uri),
        tuning=TuningJobs(store.jobs, runner),
    )
    locations = LocationService(projects)
    location_operations = LocationOperations(store.location_operations, locations)
    studies = StudyService(
        store.studies,
        store.study_trials,
        locations,
        location_operations,
        strategy_for=strategy_for,
        should_stop=should_stop,
    )
    return Platform(
        projects=projects,
        jobs=jobs,
        models=models,
        versions=versions,
        operations=operations,
        predictions=PredictionService(serving, models, versions),
        storage=storage,
        access=access,
        identity=identity,
        locations=locations,
        location_operations=location_operations,
        studies=studies,
    )
