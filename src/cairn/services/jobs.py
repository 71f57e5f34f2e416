"""Training jobs: create, read, list, cancel, patch; the queue; recovery after a restart.

A job's document is the source of truth for its state. The runner reports progress
through callbacks, and every state change is one atomic update of that document, so a
cancel racing a finishing replica can never resurrect a job.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from cairn.domain.errors import ApiError, Code, already_exists, failed_precondition, invalid_field
from cairn.domain.jobs import (
    ACTIVE_STATES,
    DEFAULT_MAX_REPLICAS,
    OUTPUT_ONLY_JOB_FIELDS,
    TERMINAL_STATES,
    Job,
    TrainingInput,
    check_labels,
    check_replica_limit,
    unsupported_training_features,
    validate_new_job,
)
from cairn.domain.names import JobName, check_id, check_project
from cairn.domain.wire import format_timestamp, now
from cairn.services.access import service_agent
from cairn.services.batch_jobs import BatchJobs
from cairn.services.projects import ProjectService
from cairn.services.records import ListRequest, list_page, new_etag, public
from cairn.services.request_paths import RequestPaths
from cairn.services.tuning_jobs import TuningJobs
from cairn.store import DuplicateKeyError, EtagMismatchError

log = logging.getLogger(__name__)

RESTART_MESSAGE = (
    "The Cairn server restarted while this job was running and its processes are gone. "
    "Submit the job again under a new job id."
)


class RunOutcomeLike(Protocol):
    state: str
    error_message: str | None


class Runner(Protocol):
    """What the job service needs from the training engine (`cairn.training.TrainingRunner`)."""

    def start(
        self,
        project: str,
        job_id: str,
        training_input: dict[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[Any], None],
        extra_env: Mapping[str, str] | None = None,
    ) -> None: ...

    def cancel(self, project: str, job_id: str) -> None: ...

    def recover(
        self,
        project: str,
        job_id: str,
        training_input: dict[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[Any], None],
        extra_env: Mapping[str, str] | None = None,
    ) -> bool:
        """True: the runner took charge (re-adopted, or judged how the run ended while the
        server was down) and `on_finished` follows; False: nothing was launched."""
        ...

    def write_job_file(self, project: str, job_id: str, name: str, data: bytes) -> Path:
        """A file in the job's directory that only the job's replicas can read (0600)."""
        ...

    def remove_job_file(self, project: str, job_id: str, name: str) -> None: ...

    def read_logs(
        self, project: str, job_id: str, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str]: ...

    def shutdown(self) -> None: ...


class JobCredentials(Protocol):
    """Refreshable credentials a job's replicas run with (`services.identity`)."""

    def issue(self, job: str, member: str) -> dict[str, Any]: ...

    def revoke(self, job: str) -> None: ...

    def jobs_holding_credentials(self) -> list[str]: ...


# The job's credential inside its directory; GOOGLE_APPLICATION_CREDENTIALS names it.
CREDENTIAL_FILE = "application_default_credentials.json"


class JobService:
    def __init__(
        self,
        repo: Any,
        projects: ProjectService,
        runner: Runner,
        *,
        max_running_jobs: int = 4,
        max_replicas: int = DEFAULT_MAX_REPLICAS,
        paths: RequestPaths | None = None,
        credentials: JobCredentials | None = None,
        tuning: TuningJobs | None = None,
        batch: BatchJobs | None = None,
    ) -> None:
        """`tuning` runs jobs with `trainingInput.hyperparameters` (None: refused as
        UNIMPLEMENTED); it runs their trials through `runner` too. `batch` runs jobs with
        `predictionInput` (None: refused as UNIMPLEMENTED)."""
        self._credentials = credentials
        self._tuning = tuning
        self._batch = batch
        self._repo = repo
        self._projects = projects
        self._runner = runner
        self._max_running = max(1, max_running_jobs)
        self._max_replicas = max_replicas
        self._paths = paths or RequestPaths()
        self._lock = threading.Lock()
        self._queue: deque[tuple[str, str]] = deque()
        self._running: set[tuple[str, str]] = set()

    # ----- API methods -------------------------------------------------------------------

    def create(self, project: str, body: Any) -> dict[str, Any]:
        self._projects.ensure(project)
        job = Job.parse(body, "job")
        for name in OUTPUT_ONLY_JOB_FIELDS:
            setattr(job, name, None)
        validate_new_job(job)
        if job.prediction_input is not None:
            if self._batch is None:
                raise ApiError(
                    Code.UNIMPLEMENTED, "This server was started without batch prediction."
                )
            self._batch.check_new(project, job.prediction_input)
        else:
            self._check_training(project, job)
        job.state = "QUEUED"
        job.create_time = now()
        job.etag = new_etag()
        doc = job.to_json()
        key = (project, str(job.job_id))
        try:
            self._repo.insert(key, doc, state="QUEUED")
        except DuplicateKeyError:
            raise already_exists(
                "job.job_id", f"A job with the id '{job.job_id}' already exists."
            ) from None
        self._enqueue(key)
        return self.get(project, str(job.job_id))

    def _check_training(self, project: str, job: Job) -> None:
        assert job.training_input is not None
        # Everything the runner will launch is checked here, in the request: a job that
        # could never start is refused, not queued to fail.
        check_replica_limit(job.training_input, self._max_replicas)
        self._check_paths(job.training_input)
        if (unsupported := unsupported_training_features(job.training_input)) is not None:
            raise unsupported
        if job.training_input.hyperparameters is not None:
            if self._tuning is None:
                raise ApiError(
                    Code.UNIMPLEMENTED, "This server was started without hyperparameter tuning."
                )
            self._tuning.check_new(project, job.training_input.to_json())

    def _check_paths(self, spec: TrainingInput) -> None:
        path = "job.training_input"
        for index, uri in enumerate(spec.package_uris or []):
            self._paths.check_location(uri, f"{path}.package_uris[{index}]")
        if spec.job_dir:
            self._paths.check_location(spec.job_dir, f"{path}.job_dir")
        for index, arg in enumerate(spec.args or []):
            self._paths.check_trainer_arg(arg, f"{path}.args[{index}]")

    def get(self, project: str, job_id: str) -> dict[str, Any]:
        check_project(project)
        check_id(job_id, "name")
        doc = self._repo.get((project, job_id))
        if doc is None:
            raise ApiError(Code.NOT_FOUND, f"Job {JobName(project, job_id)} does not exist.")
        return self._render(project, doc)

    def list(self, project: str, request: ListRequest) -> dict[str, Any]:
        self._projects.ensure(project)
        return list_page(
            self._repo,
            (project,),
            request,
            collection="jobs",
            render=lambda doc: self._render(project, doc),
        )

    def cancel(self, project: str, job_id: str) -> dict[str, Any]:
        self.get(project, job_id)
        key = (project, job_id)
        decided: dict[str, str] = {}

        def request_cancel(doc: dict[str, Any]) -> dict[str, Any] | None:
            state = doc.get("state")
            decided["from"] = str(state)
            if state in TERMINAL_STATES or state == "CANCELLING":
                return None
            if state == "QUEUED":
                return _finished(doc, "CANCELLED", None)
            return {**doc, "state": "CANCELLING"}

        self._repo.update(key, request_cancel)
        previous = decided.get("from")
        if previous in TERMINAL_STATES:
            raise failed_precondition(
                f"Job {JobName(project, job_id)} has already ended ({previous}); "
                "only queued or running jobs can be cancelled."
            )
        if previous == "QUEUED":
            with self._lock:
                if key in self._queue:
                    self._queue.remove(key)
        elif previous in ("PREPARING", "RUNNING"):
            self._engine(self._repo.get(key) or {}).cancel(project, job_id)
        return {}

    def patch(
        self, project: str, job_id: str, body: Any, update_mask: str | None
    ) -> dict[str, Any]:
        self.get(project, job_id)
        patch = Job.parse(body, "job")
        paths = [p.strip() for p in (update_mask or "").split(",") if p.strip()]
        if not paths:
            raise invalid_field(
                "update_mask", "An update mask is required; jobs can update 'labels'."
            )
        for path in paths:
            if path not in ("labels", "etag"):
                raise invalid_field(
                    "update_mask", f"'{path}' cannot be updated; jobs can update 'labels'."
                )
        check_labels(patch.labels, "job.labels")

        def apply(doc: dict[str, Any]) -> dict[str, Any]:
            updated = dict(doc)
            if "labels" in paths:
                if patch.labels:
                    updated["labels"] = dict(patch.labels)
                else:
                    updated.pop("labels", None)
            updated["etag"] = new_etag()
            return updated

        try:
            self._repo.update((project, job_id), apply, expect_etag=patch.etag or None)
        except EtagMismatchError:
            raise ApiError(
                Code.ABORTED,
                "The job was changed since you read it (etag mismatch); get it again and retry.",
            ) from None
        return self.get(project, job_id)

    def read_logs(self, project: str, job_id: str, cursor: str | None) -> dict[str, Any]:
        job = self.get(project, job_id)
        entries, next_cursor = self._runner.read_logs(project, job_id, cursor)
        return {"entries": entries, "cursor": next_cursor, "jobState": job.get("state")}

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Recover after a restart: re-adopt or fail running jobs, then re-queue queued ones."""
        for key, doc in self._repo.in_states(["PREPARING", "RUNNING", "CANCELLING"]):
            project, job_id = key
            spec = doc.get("trainingInput", {})
            adopted = False
            # Count the slot before re-adopting: an adopted job may finish at once.
            with self._lock:
                self._running.add((project, job_id))
            try:
                if self._batch is not None and doc.get("predictionInput") is not None:
                    adopted = self._batch.recover(
                        project,
                        job_id,
                        doc["predictionInput"],
                        on_state=self._state_callback((project, job_id)),
                        on_finished=self._finished_callback((project, job_id)),
                    )
                elif self._tuning is not None and spec.get("hyperparameters") is not None:
                    adopted = self._tuning.recover(
                        project,
                        job_id,
                        spec,
                        on_state=self._state_callback((project, job_id)),
                        on_finished=self._finished_callback((project, job_id)),
                        identity_env=partial(self._identity_env, (project, job_id), doc),
                    )
                else:
                    adopted = self._runner.recover(
                        project,
                        job_id,
                        spec,
                        on_state=self._state_callback((project, job_id)),
                        on_finished=self._finished_callback((project, job_id)),
                    )
            except Exception:
                log.exception("could not re-adopt job %s/%s", project, job_id)
            if adopted:
                if doc.get("state") == "CANCELLING":
                    self._engine(doc).cancel(project, job_id)
                continue
            with self._lock:
                self._running.discard((project, job_id))
            if doc.get("predictionInput") is not None and self._requeue((project, job_id)):
                continue
            final = "CANCELLED" if doc.get("state") == "CANCELLING" else "FAILED"
            message = None if final == "CANCELLED" else RESTART_MESSAGE
            self._repo.update(
                (project, job_id),
                lambda d, f=final, m=message: (
                    _finished(d, f, m) if d.get("state") in ACTIVE_STATES else None
                ),
            )
            self._end_identity((project, job_id))
        self._revoke_credentials_of_ended_jobs()
        for key, _doc in self._repo.in_states(["QUEUED"]):
            self._enqueue(tuple(key))

    def _requeue(self, key: tuple[str, str]) -> bool:
        """A prediction job that had launched no worker yet runs again from the queue
        (it has no side effects to undo); True if it was queued again."""

        def back_to_queue(doc: dict[str, Any]) -> dict[str, Any] | None:
            if doc.get("state") not in ("PREPARING", "RUNNING"):
                return None
            return {**doc, "state": "QUEUED"}

        doc = self._repo.update(key, back_to_queue)
        return doc is not None and doc.get("state") == "QUEUED"

    def _revoke_credentials_of_ended_jobs(self) -> None:
        """A crash can end a job between issuing its credential and recording its end."""
        if self._credentials is None:
            return
        for name in self._credentials.jobs_holding_credentials():
            _, project, _, job_id = name.split("/")  # projects/P/jobs/J
            doc = self._repo.get((project, job_id))
            if doc is None or doc.get("state") not in ACTIVE_STATES:
                self._end_identity((project, job_id))

    def stop(self) -> None:
        with self._lock:
            self._queue.clear()
        if self._tuning is not None:
            self._tuning.shutdown()  # first, so trials cut short count as interrupted
        self._runner.shutdown()
        if self._batch is not None:
            self._batch.shutdown()
        if self._tuning is not None:
            self._tuning.join(timeout=10)

    # ----- scheduling --------------------------------------------------------------------

    def _enqueue(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._queue.append((key[0], key[1]))
        self._dispatch()

    def _dispatch(self) -> None:
        """Start queued jobs while there is room; the queue order is submission order."""
        while True:
            with self._lock:
                if not self._queue or len(self._running) >= self._max_running:
                    return
                key = self._queue.popleft()
                self._running.add(key)
            # Claim the job in one atomic step, so a cancel landing now wins cleanly.
            doc = self._repo.update(
                key, lambda d: {**d, "state": "PREPARING"} if d.get("state") == "QUEUED" else None
            )
            if doc is None or doc.get("state") != "PREPARING":
                with self._lock:
                    self._running.discard(key)
                continue
            try:
                self._engine(doc).start(
                    key[0],
                    key[1],
                    doc.get("predictionInput") or doc.get("trainingInput", {}),
                    on_state=self._state_callback(key),
                    on_finished=self._finished_callback(key),
                    extra_env=self._identity_env(key, doc),
                )
            except ApiError as exc:
                self._finished_callback(key)(_Outcome("FAILED", exc.message))
            except Exception as exc:  # the runner must never leave a job stuck in QUEUED
                log.exception("could not start job %s/%s", *key)
                self._finished_callback(key)(
                    _Outcome("FAILED", f"Cairn could not start the job: {exc}")
                )

    def _engine(self, doc: Mapping[str, Any]) -> Runner | TuningJobs | BatchJobs:
        """The batch engine for a prediction job, the tuning engine for a job with
        hyperparameters, the training runner otherwise."""
        if self._batch is not None and doc.get("predictionInput") is not None:
            return self._batch
        if self._tuning is not None and (doc.get("trainingInput") or {}).get("hyperparameters"):
            return self._tuning
        return self._runner

    def _identity_env(self, key: tuple[str, str], doc: dict[str, Any]) -> dict[str, str]:
        """A credential for whom the job runs as: its service account, else the project's
        service agent; never the submitter's own rights."""
        if self._credentials is None or doc.get("predictionInput") is not None:
            # Batch workers read and write Cairn's storage as files; they call no API.
            return {}
        project, job_id = key
        account = (doc.get("trainingInput") or {}).get("serviceAccount")
        member = f"serviceAccount:{account}" if account else service_agent(project)
        info = self._credentials.issue(f"projects/{project}/jobs/{job_id}", member)
        path = self._runner.write_job_file(
            project, job_id, CREDENTIAL_FILE, json.dumps(info).encode()
        )
        return {"GOOGLE_APPLICATION_CREDENTIALS": str(path)}

    def _end_identity(self, key: tuple[str, str]) -> None:
        """The job ended: its credential stops working and its file goes."""
        if self._credentials is None:
            return
        project, job_id = key
        try:
            self._credentials.revoke(f"projects/{project}/jobs/{job_id}")
            self._runner.remove_job_file(project, job_id, CREDENTIAL_FILE)
        except Exception:
            log.exception("could not revoke the credential of job %s/%s", project, job_id)

    def _state_callback(self, key: tuple[str, str]) -> Callable[[str], None]:
        def on_state(state: str) -> None:
            def advance(doc: dict[str, Any]) -> dict[str, Any] | None:
                if doc.get("state") in TERMINAL_STATES or doc.get("state") == "CANCELLING":
                    return None
                updated = {**doc, "state": state}
                if state == "RUNNING" and "startTime" not in doc:
                    updated["startTime"] = format_timestamp(now())
                return updated

            self._repo.update(key, advance)

        return on_state

    def _finished_callback(self, key: tuple[str, str]) -> Callable[[Any], None]:
        def on_finished(outcome: Any) -> None:
            state = outcome.state
            message = getattr(outcome, "error_message", None)

            def finish(doc: dict[str, Any]) -> dict[str, Any] | None:
                if doc.get("state") in TERMINAL_STATES:
                    return None
                final = "CANCELLED" if doc.get("state") == "CANCELLING" else state
                return _finished(doc, final, message if final == "FAILED" else None)

            try:
                self._repo.update(key, finish)
                self._end_identity(key)
            finally:
                with self._lock:
                    self._running.discard(key)
                self._dispatch()

        return on_finished

    def _render(self, project: str, doc: dict[str, Any]) -> dict[str, Any]:
        rendered = public(doc)
        if rendered.get("state") == "QUEUED":
            key = (project, doc.get("jobId"))
            with self._lock:
                position = next((i for i, k in enumerate(self._queue) if k == key), None)
            if position:
                rendered["jobPosition"] = str(position)
        return rendered


class _Outcome:
    def __init__(self, state: str, error_message: str | None) -> None:
        self.state = state
        self.error_message = error_message


def _finished(doc: dict[str, Any], state: str, message: str | None) -> dict[str, Any]:
    updated = {**doc, "state": state, "endTime": format_timestamp(now())}
    if message:
        updated["errorMessage"] = message
    return updated
