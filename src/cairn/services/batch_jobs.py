"""Batch prediction jobs (`jobs.create` with `predictionInput`): checks, plan, progress.

`JobService` owns a job's lifecycle (queue, states, cancel, restart); this class is the
engine it hands prediction jobs to, as it hands tuning jobs to `TuningJobs`. Everything a
job needs is checked at create (the model or version exists and is READY, every input path
matches files, the output path is new), and checked again when the job leaves the queue,
since the version may have gone meanwhile. The plan it starts (`serving.batch.BatchPlan`)
splits the input between worker processes; their counts flow back into `predictionOutput`
while they run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cairn.domain.errors import ApiError, Code, invalid_field, shown
from cairn.domain.jobs import TERMINAL_STATES, PredictionInput
from cairn.services.models import ModelService
from cairn.services.request_paths import RequestPaths
from cairn.services.versions import VersionService
from cairn.serving.batch import (
    ERRORS_PREFIX,
    RESULTS_PREFIX,
    BatchOutcome,
    BatchPlan,
    InputFile,
    split_text,
    worker_count,
)
from cairn.serving.batch.inputs import DEFAULT_BYTES_PER_WORKER, TF_RECORD_FORMATS, Piece
from cairn.serving.frameworks import detect_framework

FIELD = "job.prediction_input"
# AI Platform's default batch size (instances per model call).
DEFAULT_BATCH_SIZE = 64
_WILDCARD = ("*", "?", "[")


def default_worker_count() -> int:
    """One worker per core: each is a process predicting on one core."""
    return max(1, os.cpu_count() or 1)


class BatchEngine(Protocol):
    """What this service needs from `serving.batch.BatchRunner`."""

    def start(
        self,
        project: str,
        job_id: str,
        plan: BatchPlan,
        *,
        on_state: Callable[[str], None],
        on_progress: Callable[[int, int], None],
        on_finished: Callable[[BatchOutcome], None],
    ) -> None: ...

    def recover(
        self,
        project: str,
        job_id: str,
        *,
        on_state: Callable[[str], None],
        on_progress: Callable[[int, int], None],
        on_finished: Callable[[BatchOutcome], None],
    ) -> bool: ...

    def cancel(self, project: str, job_id: str) -> None: ...

    def shutdown(self) -> None: ...


class Storage(Protocol):
    def local_path(self, uri: str) -> Path: ...

    def glob(self, pattern_uri: str) -> list[str]: ...


@dataclass(frozen=True)
class ModelSource:
    model_dir: Path
    framework: str | None
    python: str | None = None
    prediction_class: str | None = None


class BatchJobs:
    def __init__(
        self,
        repo: Any,
        engine: BatchEngine,
        models: ModelService,
        versions: VersionService,
        storage: Storage,
        *,
        paths: RequestPaths | None = None,
        max_workers: int = 64,
        default_workers: int | None = None,
    ) -> None:
        """`max_workers`: the most workers one job may ask for (CAIRN_MAX_REPLICAS);
        `default_workers`: how many a job gets without maxWorkerCount (one per core)."""
        self._repo = repo
        self._engine = engine
        self._models = models
        self._versions = versions
        self._storage = storage
        self._paths = paths or RequestPaths()
        self._max_workers = max_workers
        self._default_workers = default_workers or default_worker_count()

    # ----- create -------------------------------------------------------------------------

    def check_new(self, project: str, spec: PredictionInput) -> None:
        """Refuse, naming the field, a job that could not run."""
        for index, uri in enumerate(spec.input_paths or []):
            self._paths.check_location(uri, f"{FIELD}.input_paths[{index}]")
        self._paths.check_location(str(spec.output_path), f"{FIELD}.output_path")
        if spec.uri:
            self._paths.check_location(spec.uri, f"{FIELD}.uri")
        if spec.max_worker_count is not None and spec.max_worker_count > self._max_workers:
            raise invalid_field(
                f"{FIELD}.max_worker_count",
                f"This server runs at most {self._max_workers} workers per job "
                "(CAIRN_MAX_REPLICAS).",
            )
        wire = spec.to_json()
        self.model_source(project, wire)
        self.input_files(wire)
        self._check_output(str(spec.output_path))

    def model_source(self, project: str, spec: Mapping[str, Any]) -> ModelSource:
        """The model the job predicts with: a READY version's deployed copy, or a directory."""
        if spec.get("uri"):
            return self._directory_source(str(spec["uri"]))
        if spec.get("versionName"):
            field, name = f"{FIELD}.version_name", str(spec["versionName"])
            _, owner, _, model, _, version = name.split("/")
        else:
            field, name = f"{FIELD}.model_name", str(spec.get("modelName"))
            _, owner, _, model = name.split("/")
            version = ""
        if owner != project:
            # The caller's rights were checked on this project only.
            raise invalid_field(
                field, f"{shown(name)} is in another project; use a model of project {project}."
            )
        try:
            if not version:
                default = self._models.get(project, model).get("defaultVersion") or {}
                if not default.get("name"):
                    raise invalid_field(
                        field,
                        f"Model {name} has no versions yet; create one "
                        "(cairn versions create) or name a version with versionName.",
                    )
                version = str(default["name"]).rsplit("/", 1)[-1]
            # TODO: a version's runtimeVersion could pick the environment, as for serving.
            launch = self._versions.launch_spec(project, model, version)
        except ApiError as error:
            if error.code in (Code.NOT_FOUND, Code.FAILED_PRECONDITION):
                raise invalid_field(field, error.message) from None
            raise
        return ModelSource(
            launch.model_dir, launch.framework, launch.python, launch.prediction_class
        )

    def _directory_source(self, uri: str) -> ModelSource:
        field = f"{FIELD}.uri"
        local = self._storage.local_path(uri)
        if not local.is_dir():
            raise invalid_field(
                field, f"{uri} is not a directory; point uri at the folder that holds the model."
            )
        try:
            framework = detect_framework(local)
        except ApiError as error:
            raise invalid_field(field, error.message) from None
        return ModelSource(local, framework)

    def input_files(self, spec: Mapping[str, Any]) -> list[InputFile]:
        """Every input file, wildcards expanded (in order, each file once)."""
        files: dict[str, InputFile] = {}
        for index, pattern in enumerate(spec.get("inputPaths") or []):
            field = f"{FIELD}.input_paths[{index}]"
            uris = self._expand(str(pattern), field)
            for uri in uris:
                local = self._storage.local_path(uri)
                if str(local) not in files:
                    files[str(local)] = InputFile(str(local), uri, local.stat().st_size)
        return list(files.values())

    def _expand(self, pattern: str, field: str) -> list[str]:
        if any(mark in pattern for mark in _WILDCARD):
            try:
                matched = [uri for uri in self._storage.glob(pattern) if not uri.endswith("/")]
            except ApiError as error:
                raise invalid_field(field, error.message) from None
            files = [uri for uri in matched if _readable_file(self._storage.local_path(uri))]
            if not files:
                raise invalid_field(field, f"{pattern} matches no files.")
            return sorted(files)
        local = self._storage.local_path(pattern)
        if local.is_dir():
            raise invalid_field(
                field,
                f"{pattern} is a directory; name its files with a wildcard "
                f"({pattern.rstrip('/')}/*).",
            )
        if not _readable_file(local):
            raise invalid_field(
                field,
                f"{pattern} does not exist; upload the input first "
                "(cairn storage cp FILE gs://BUCKET/PATH).",
            )
        return [pattern]

    def _check_output(self, output_path: str) -> None:
        local = self._storage.local_path(output_path)
        if local.exists() and not local.is_dir():
            raise invalid_field(f"{FIELD}.output_path", f"{output_path} is a file, not a folder.")
        if local.is_dir() and any(
            name.startswith((RESULTS_PREFIX, ERRORS_PREFIX)) for name in os.listdir(local)
        ):
            raise invalid_field(
                f"{FIELD}.output_path",
                f"{output_path} already holds the results of a batch prediction; choose a new "
                "folder, so the two jobs' files cannot mix.",
            )

    # ----- running (called by JobService) -------------------------------------------------

    def start(
        self,
        project: str,
        job_id: str,
        spec: Mapping[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[Any], None],
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        """Plan the job and start its workers; ApiError when it can no longer run."""
        plan = self.plan(project, spec)
        Path(plan.output_dir).mkdir(parents=True, exist_ok=True)
        self._record_output(project, job_id, spec, 0, 0, 0.0)
        self._engine.start(
            project,
            job_id,
            plan,
            on_state=on_state,
            on_progress=self._progress_callback(project, job_id, spec),
            on_finished=self._finished_callback(project, job_id, spec, on_finished),
        )

    def plan(self, project: str, spec: Mapping[str, Any]) -> BatchPlan:
        source = self.model_source(project, spec)
        files = self.input_files(spec)
        data_format = str(spec.get("dataFormat"))
        if spec.get("maxWorkerCount"):
            count = worker_count(files, data_format, int(spec["maxWorkerCount"]))
        else:
            count = worker_count(
                files, data_format, self._default_workers, DEFAULT_BYTES_PER_WORKER
            )
        if data_format in TF_RECORD_FORMATS:
            # Every worker reads every file and keeps its own records (see inputs.py).
            shares = [[Piece(f) for f in files] for _ in range(count)]
        else:
            shares = split_text(files, count)
        output_format = "CSV" if spec.get("outputDataFormat") == "CSV" else "JSON"
        return BatchPlan(
            model_dir=str(source.model_dir),
            framework=source.framework,
            data_format=data_format,
            output_format=output_format,
            output_dir=str(self._storage.local_path(str(spec["outputPath"]))),
            batch_size=int(spec.get("batchSize") or DEFAULT_BATCH_SIZE),
            shares=[[_piece_json(p) for p in share] for share in shares],
            signature_name=spec.get("signatureName") or None,
            prediction_class=source.prediction_class,
            python=source.python,
        )

    def recover(
        self,
        project: str,
        job_id: str,
        spec: Mapping[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[Any], None],
    ) -> bool:
        return self._engine.recover(
            project,
            job_id,
            on_state=on_state,
            on_progress=self._progress_callback(project, job_id, spec),
            on_finished=self._finished_callback(project, job_id, spec, on_finished),
        )

    def cancel(self, project: str, job_id: str) -> None:
        self._engine.cancel(project, job_id)

    def shutdown(self) -> None:
        self._engine.shutdown()

    # ----- predictionOutput ---------------------------------------------------------------

    def _progress_callback(
        self, project: str, job_id: str, spec: Mapping[str, Any]
    ) -> Callable[[int, int], None]:
        def on_progress(predictions: int, errors: int) -> None:
            self._record_output(project, job_id, spec, predictions, errors, None)

        return on_progress

    def _finished_callback(
        self,
        project: str,
        job_id: str,
        spec: Mapping[str, Any],
        on_finished: Callable[[Any], None],
    ) -> Callable[[BatchOutcome], None]:
        def finished(outcome: BatchOutcome) -> None:
            try:
                self._record_output(
                    project,
                    job_id,
                    spec,
                    outcome.prediction_count,
                    outcome.error_count,
                    outcome.node_hours,
                    final=True,
                )
            finally:
                on_finished(outcome)

        return finished

    def _record_output(
        self,
        project: str,
        job_id: str,
        spec: Mapping[str, Any],
        predictions: int,
        errors: int,
        node_hours: float | None,
        *,
        final: bool = False,
    ) -> None:
        def write(doc: dict[str, Any]) -> dict[str, Any] | None:
            if doc.get("state") in TERMINAL_STATES:
                return None
            previous = doc.get("predictionOutput") or {}
            output: dict[str, Any] = {"outputPath": spec.get("outputPath")}
            # proto3 JSON leaves zero counts out.
            if predictions:
                output["predictionCount"] = str(predictions)
            if errors:
                output["errorCount"] = str(errors)
            hours = node_hours if node_hours is not None else previous.get("nodeHours")
            if hours:
                output["nodeHours"] = round(float(hours), 6)
            if not final and output == previous:
                return None
            return {**doc, "predictionOutput": output}

        self._repo.update((project, job_id), write)


def _readable_file(path: Path) -> bool:
    """A file, or anything else read as a stream (a named pipe), but not a directory."""
    return path.exists() and not path.is_dir()


def _piece_json(piece: Piece) -> dict[str, Any]:
    return {
        "path": piece.file.path,
        "uri": piece.file.uri,
        "size": piece.file.size,
        "start": piece.start,
        "end": piece.end,
    }
