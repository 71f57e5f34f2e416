"""The platform's use cases, wired together once (by `cairn.server`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cairn.domain.jobs import DEFAULT_MAX_REPLICAS
from cairn.services.access import AccessService
from cairn.services.batch_jobs import BatchEngine, BatchJobs
from cairn.services.identity import IdentityService, JobCredentialIssuer
from cairn.services.jobs import JobService, Runner
from cairn.services.locations import LocationOperations, LocationService
from cairn.services.logs import LogService
from cairn.services.models import ModelService
from cairn.services.operations import OperationService
from cairn.services.predictions import PredictionService
from cairn.services.projects import ProjectService
from cairn.services.request_logs import PredictionLogWriter, RequestLogService
from cairn.services.request_paths import RequestPaths
from cairn.services.studies import StudyService
from cairn.services.tuning_jobs import TrialRunner, TuningJobs
from cairn.services.versions import VersionService
from cairn.training.capacity import MachineCapacity, Placement, PlacingRunner, detect_capacity
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
    request_logs: RequestLogService
    logs: LogService | None = None  # entries:list; needs the home (build_platform's `home`)

    def start(self) -> None:
        """Recover what a previous run left: jobs, versions, then serve."""
        self.request_logs.writer.start()
        self.jobs.start()
        self.versions.start()

    def stop(self) -> None:
        self.versions.stop()
        self.jobs.stop()
        self.request_logs.writer.stop()


def build_platform(
    store: Any,
    storage: Any,
    runner: TrainingEngine,
    serving: Any,
    *,
    models_root: Path,
    max_running_jobs: int | None = None,
    max_nodes_per_version: int = 8,
    max_replicas: int = DEFAULT_MAX_REPLICAS,
    local_roots: Sequence[Path] = (),
    access_token_seconds: int = 3600,
    token_uri: str | None = None,
    prediction_log_queue_size: int = 10_000,
    prediction_log_queue_bytes: int = 256 * 2**20,
    prediction_log_max_rows: int = 1_000_000,
    prediction_log_max_total_rows: int = 2_000_000,
    prediction_log_retention_days: float = 30.0,
    batch_engine: BatchEngine | None = None,
    capacity: MachineCapacity | None = None,
    min_max_wait_seconds: float = 1800.0,
    home: Path | None = None,
    jobs_root: Path | None = None,
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
        # packageUris of versions share the training jobs' environment cache.
        environments=getattr(runner, "environments", None),
    )
    # Jobs and their tuning trials take their GPUs from one ledger of the machine.
    placement = Placement(capacity or detect_capacity())
    placing = PlacingRunner(runner, placement)
    jobs = JobService(
        store.jobs,
        projects,
        placing,
        placement=placement,
        min_max_wait_seconds=min_max_wait_seconds,
        max_running_jobs=max_running_jobs,
        max_replicas=max_replicas,
        paths=paths,
        credentials=None if token_uri is None else JobCredentialIssuer(identity, token_uri),
        tuning=TuningJobs(store.jobs, placing),
        batch=(
            None
            if batch_engine is None
            else BatchJobs(
                store.jobs,
                batch_engine,
                models,
                versions,
                storage,
                paths=paths,
                max_workers=max_replicas,
            )
        ),
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
    log_writer = PredictionLogWriter(
        store.prediction_logs,
        queue_size=prediction_log_queue_size,
        queue_bytes=prediction_log_queue_bytes,
        max_rows=prediction_log_max_rows,
        max_total_rows=prediction_log_max_total_rows,
        retention_seconds=prediction_log_retention_days * 86400.0,
    )
    request_logs = RequestLogService(store.prediction_logs, log_writer, models, versions, serving)
    logs = None
    if home is not None:
        logs = LogService(
            access,
            request_logs,
            models,
            versions,
            jobs_root=jobs_root or home / "jobs",
            home=home,
            node_log_paths=getattr(serving, "node_log_paths", None),
        )
    return Platform(
        projects=projects,
        jobs=jobs,
        models=models,
        versions=versions,
        operations=operations,
        predictions=PredictionService(serving, models, versions, log_writer),
        storage=storage,
        access=access,
        identity=identity,
        locations=locations,
        location_operations=location_operations,
        studies=studies,
        request_logs=request_logs,
        logs=logs,
    )
