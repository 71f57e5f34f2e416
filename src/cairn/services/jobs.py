"""Training jobs: create, read, list, cancel, patch; the queue; recovery after a restart.

A job's document is the source of truth for its state. The runner reports progress
through callbacks, and every state change is one atomic update of that document, so a
cancel racing a finishing replica can never resurrect a job.

The queue is capacity-aware (docs/scheduling.md): a job starts when what its replicas ask
for (`training.capacity`) fits what running jobs leave of the machine, in
`scheduling.priority` order, then submission order; a later job starts first only on what
the jobs ahead of it cannot use yet, so it never delays them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
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
    parallel_trials,
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
from cairn.training.capacity import (
    JobDemand,
    Placement,
    PlacingRunner,
    batch_demand,
    detect_capacity,
    training_demand,
)
from cairn.training.scheduling import (
    DEFAULT_MIN_MAX_WAIT_S,
    check_max_wait,
    max_wait_seconds,
    priority,
)

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

    def check_containers(self, training_input: dict[str, Any]) -> None:
        """Refuse a custom-container job (imageUri) this machine cannot run."""
        ...

    def write_job_file(self, project: str, job_id: str, name: str, data: bytes) -> Path:
        """A file in the job's directory that only the job's replicas can read (0600)."""
        ...

    def remove_job_file(self, project: str, job_id: str, name: str) -> None: ...

    def read_logs(
        self, project: str, job_id: str, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str]: ...

    def replica_states(self, project: str, job_id: str) -> list[dict[str, Any]] | None:
        """Each replica's state and restarts (`Job.cairnReplicas`); None before any runs."""
        ...

    def shutdown(self) -> None: ...


class JobCredentials(Protocol):
    """Refreshable credentials a job's replicas run with (`services.identity`)."""

    def issue(self, job: str, member: str) -> dict[str, Any]: ...

    def revoke(self, job: str) -> None: ...

    def jobs_holding_credentials(self) -> list[str]: ...


# The job's credential inside its directory; GOOGLE_APPLICATION_CREDENTIALS names it.
CREDENTIAL_FILE = "application_default_credentials.json"


@dataclass
class _Waiting:
    """A QUEUED job in the queue: what it asks for, and its place (higher priority first,
    then submission order)."""

    key: tuple[str, str]
    priority: int
    sequence: int
    demand: JobDemand
    timer: threading.Timer | None = None

    @property
    def order(self) -> tuple[int, int]:
        return (-self.priority, self.sequence)


class JobService:
    def __init__(
        self,
        repo: Any,
        projects: ProjectService,
        runner: Runner,
        *,
        max_running_jobs: int | None = None,
        max_replicas: int = DEFAULT_MAX_REPLICAS,
        paths: RequestPaths | None = None,
        credentials: JobCredentials | None = None,
        tuning: TuningJobs | None = None,
        batch: BatchJobs | None = None,
        placement: Placement | None = None,
        min_max_wait_seconds: float = DEFAULT_MIN_MAX_WAIT_S,
    ) -> None:
        """`tuning` runs jobs with `trainingInput.hyperparameters` (None: refused as
        UNIMPLEMENTED); it runs their trials through `runner` too. `batch` runs jobs with
        `predictionInput` (None: refused as UNIMPLEMENTED).

        `placement`: the machine's capacity and what running jobs hold of it; `runner` (and
        the tuning engine's) must then be a `PlacingRunner` on it, which hands replicas
        their GPUs. None: this machine as detected, and `runner` is wrapped here.
        `max_running_jobs`: a cap on running jobs on top of the capacity (None: none)."""
        if placement is None:
            placement = Placement(detect_capacity())
            runner = PlacingRunner(runner, placement)
        self._credentials = credentials
        self._tuning = tuning
        self._batch = batch
        self._repo = repo
        self._projects = projects
        self._runner = runner
        self._placement = placement
        self._max_running = None if max_running_jobs is None else max(1, max_running_jobs)
        self._min_wait_s = min_max_wait_seconds
        self._max_replicas = max_replicas
        self._paths = paths or RequestPaths()
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []  # kept in order: the head starts first
        self._sequence = 0
        self._running: set[tuple[str, str]] = set()
        self._stopping = False

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
            demand = self._batch_demand(project, job.prediction_input.to_json())
        else:
            demand = self._check_training(project, job)
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
        self._enqueue(key, doc, demand)
        return self.get(project, str(job.job_id))

    def _check_training(self, project: str, job: Job) -> JobDemand:
        assert job.training_input is not None
        # Everything the runner will launch is checked here, in the request: a job that
        # could never start is refused, not queued to fail.
        check_replica_limit(job.training_input, self._max_replicas)
        self._check_paths(job.training_input)
        if (unsupported := unsupported_training_features(job.training_input)) is not None:
            raise unsupported
        # Custom containers: their fields, and an engine on this machine (docs/containers.md).
        self._runner.check_containers(job.training_input.to_json())
        if job.training_input.hyperparameters is not None:
            if self._tuning is None:
                raise ApiError(
                    Code.UNIMPLEMENTED, "This server was started without hyperparameter tuning."
                )
            self._tuning.check_new(project, job.training_input.to_json())
        check_max_wait(job.training_input.to_json(), self._min_wait_s)
        # What the replicas ask of this machine; refused if it could never be given.
        return training_demand(
            job.training_input, self._placement.capacity, parallel_trials(job.training_input)
        )

    def _demand(self, project: str, doc: Mapping[str, Any]) -> JobDemand:
        """What a stored job asks of the machine (ApiError if it no longer could run)."""
        if doc.get("predictionInput") is not None:
            return self._batch_demand(project, doc["predictionInput"])
        spec = TrainingInput.parse(dict(doc.get("trainingInput") or {}), "job.training_input")
        return training_demand(spec, self._placement.capacity, parallel_trials(spec))

    def _batch_demand(self, project: str, spec: Mapping[str, Any]) -> JobDemand:
        """A prediction job holds a core per worker its plan starts."""
        workers = int(spec.get("maxWorkerCount") or 0) or max(1, int(self._placement.capacity.cpus))
        if self._batch is not None:
            try:
                workers = len(self._batch.plan(project, spec).shares)
            except Exception:  # checked again at start; the count is only an estimate here
                log.debug("could not plan batch job for its worker count", exc_info=True)
        return batch_demand(max(1, workers), self._placement.capacity)

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
            self._leave_queue(key)
            self._dispatch()  # it may have held back the jobs behind it
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
            # Count the slot and what it holds before re-adopting: an adopted job may
            # finish at once, and its runs take their GPUs from what it holds.
            with self._lock:
                self._running.add((project, job_id))
            self._hold_running((project, job_id), doc)
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
            self._placement.release((project, job_id))
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
        queued = sorted(self._repo.in_states(["QUEUED"]), key=lambda kd: _created(kd[1]))
        for key, doc in queued:
            try:
                demand = self._demand(key[0], doc)
            except ApiError as error:  # the machine changed while the server was down
                self._repo.update(
                    tuple(key),
                    lambda d, m=error.message: (
                        _finished(d, "FAILED", m) if d.get("state") == "QUEUED" else None
                    ),
                )
                continue
            self._enqueue(tuple(key), doc, demand)

    def _hold_running(self, key: tuple[str, str], doc: Mapping[str, Any]) -> None:
        """A re-adopted job holds what it asked for, and the GPUs it was given."""
        try:
            demand = self._demand(key[0], doc)
        except ApiError:
            demand = JobDemand(())  # its processes run all the same; count nothing
        gpus = [int(index) for index in (doc.get(_PLACEMENT) or {}).get("gpus", [])]
        self._placement.hold(key, demand, gpus)

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
            self._stopping = True
            for waiting in self._queue:
                if waiting.timer is not None:
                    waiting.timer.cancel()
            self._queue.clear()
        if self._tuning is not None:
            self._tuning.shutdown()  # first, so trials cut short count as interrupted
        self._runner.shutdown()
        if self._batch is not None:
            self._batch.shutdown()
        if self._tuning is not None:
            self._tuning.join(timeout=10)

    # ----- scheduling --------------------------------------------------------------------

    def _enqueue(self, key: tuple[str, ...], doc: Mapping[str, Any], demand: JobDemand) -> None:
        """Put a QUEUED job in its place, arm its maxWaitTime, and start what fits."""
        spec = doc.get("trainingInput") or {}
        with self._lock:
            if self._stopping:
                return
            self._sequence += 1
            waiting = _Waiting((key[0], key[1]), priority(spec), self._sequence, demand)
            place = next(
                (i for i, w in enumerate(self._queue) if w.order > waiting.order), len(self._queue)
            )
            self._queue.insert(place, waiting)
            if (limit := max_wait_seconds(spec)) is not None:
                waited = (now() - _created(doc)).total_seconds()
                waiting.timer = threading.Timer(
                    max(0.0, limit - waited), self._waited_too_long, (waiting.key, limit)
                )
                waiting.timer.daemon = True
                waiting.timer.start()
        self._dispatch()

    def _leave_queue(self, key: tuple[str, str]) -> _Waiting | None:
        with self._lock:
            waiting = next((w for w in self._queue if w.key == key), None)
            if waiting is not None:
                self._queue.remove(waiting)
                if waiting.timer is not None:
                    waiting.timer.cancel()
            return waiting

    def _waited_too_long(self, key: tuple[str, str], limit: float) -> None:
        """`scheduling.maxWaitTime` passed while the job was still QUEUED: it fails, saying
        what it waited for, and the jobs behind it move up."""
        with self._lock:
            ahead = next((i for i, w in enumerate(self._queue) if w.key == key), None)
        waiting = self._leave_queue(key)
        if waiting is None:
            return  # started or cancelled meanwhile
        capacity = self._placement.capacity
        message = (
            f"The job waited longer than scheduling.maxWaitTime ({limit:g}s) for room on this "
            f"machine and was not started. It asks for {waiting.demand.total.describe()}; the "
            f"machine offers {capacity.describe()}, and running jobs held "
            f"{self._placement.in_use().describe()}"
            + (f"; {ahead} queued jobs were ahead of it" if ahead else "")
            + ". Submit it again when the machine is less busy, with a higher "
            "scheduling.priority, or with a longer maxWaitTime."
        )
        self._repo.update(
            key, lambda d: _finished(d, "FAILED", message) if d.get("state") == "QUEUED" else None
        )
        self._dispatch()

    def _dispatch(self) -> None:
        """Start queued jobs while what they ask for is free (and the running-job cap
        allows), in queue order. A job that must wait keeps what it could use: those
        behind it only start on the rest (cores while it waits for a GPU), so none of
        them delays it (`Placement.admit_next`)."""
        while True:
            with self._lock:
                if not self._queue or self._stopping:
                    return
                if self._max_running is not None and len(self._running) >= self._max_running:
                    return
                admitted = self._placement.admit_next([(w.key, w.demand) for w in self._queue])
                if admitted is None:
                    return
                place, allocation = admitted
                chosen = self._queue.pop(place)
                if chosen.timer is not None:
                    chosen.timer.cancel()
                key = chosen.key
                self._running.add(key)
            gpus = list(allocation.gpus)

            # Claim the job in one atomic step, so a cancel landing now wins cleanly. The
            # GPUs it holds are kept, so a restart can give them back to it.
            def claim(d: dict[str, Any], gpus: list[int] = gpus) -> dict[str, Any] | None:
                if d.get("state") != "QUEUED":
                    return None
                return {**d, "state": "PREPARING", _PLACEMENT: {"gpus": gpus}}

            doc = self._repo.update(key, claim)
            if doc is None or doc.get("state") != "PREPARING":
                with self._lock:
                    self._running.discard(key)
                self._placement.release(key)
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
                self._placement.release(key)
                self._dispatch()

        return on_finished

    def _render(self, project: str, doc: dict[str, Any]) -> dict[str, Any]:
        rendered = public(doc)
        if rendered.get("state") == "QUEUED":
            key = (project, doc.get("jobId"))
            with self._lock:
                place = next((i for i, w in enumerate(self._queue) if w.key == key), None)
            if place is not None:
                # AI Platform's jobPosition: positive while queued (1 starts next).
                rendered["jobPosition"] = str(place + 1)
        if (replicas := self._runner.replica_states(project, str(doc.get("jobId")))) is not None:
            rendered["cairnReplicas"] = replicas  # as the training runner recorded them
        return rendered


class _Outcome:
    def __init__(self, state: str, error_message: str | None) -> None:
        self.state = state
        self.error_message = error_message


# Cairn's note in a job's document of the GPU indices it holds (never rendered).
_PLACEMENT = "_placement"


def _created(doc: Mapping[str, Any]) -> datetime:
    """When the job was created (maxWaitTime counts from then; restarts keep the order)."""
    try:
        return datetime.fromisoformat(str(doc["createTime"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return now()


def _finished(doc: dict[str, Any], state: str, message: str | None) -> dict[str, Any]:
    updated = {**doc, "state": state, "endTime": format_timestamp(now())}
    if message:
        updated["errorMessage"] = message
    return updated
