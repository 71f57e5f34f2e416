"""The batch-prediction engine: runs a job's workers as processes and reports how they end.

Workers run user code (unpickling a model), so they are launched like training replicas:
through an executor, under the replica shim that records each exit code, in a session of
their own, and, on a root server, as the job's own uid. `start` returns at once; a thread
per job launches one worker per shard, watches them, reports progress, and calls
`on_finished` exactly once.

After a restart, `recover` resumes a job shard by shard: a shard with a done file keeps its
output, a worker still alive (or that left an exit file) is adopted, and any other shard is
predicted again from the start of its share.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cairn
from cairn.domain.errors import ApiError, Code, failed_precondition
from cairn.executors import (
    DEFAULT_GRACE_S,
    Executor,
    LaunchSpec,
    LocalProcessExecutor,
    ReplicaLost,
    ReplicaProcess,
    ReplicaRecord,
    RunAs,
    UidAllocator,
    user_code_environment,
)
from cairn.executors.acl import SEARCH, grant_group, group_grant, remove_default, revoke_user
from cairn.serving.batch.plan import BatchPlan, done_path, progress_path, read_json

log = logging.getLogger(__name__)

PLAN_FILE = "batch-plan.json"
RECORD_FILE = "batch-run.json"
SHUTDOWN_MESSAGE = "The Cairn server stopped while the job was running."
FOREIGN_HOME_MESSAGE = (
    "This job's workers were started by the server of another Cairn home (this home is a "
    "copy of it); they were left alone. Submit the job again under a new job id."
)
# How soon a worker's end is seen (a poll reads one small file): a whole 1M-row job of an
# XGBoost model takes about a second.
_POLL_S = 0.05
# Before a recovered job's thread acts, so the caller finishes recovering first.
_SETTLE_S = 0.2
_PROGRESS_EVERY_S = 1.0


@dataclass(frozen=True)
class BatchOutcome:
    state: str  # "SUCCEEDED" | "FAILED" | "CANCELLED"
    error_message: str | None = None
    prediction_count: int = 0
    error_count: int = 0
    node_hours: float = 0.0


@dataclass
class _Job:
    key: tuple[str, str]
    job_dir: Path
    plan: BatchPlan
    on_state: Callable[[str], None]
    on_progress: Callable[[int, int], None]
    on_finished: Callable[[BatchOutcome], None]
    run_as: RunAs | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str | None = None
    workers: dict[int, ReplicaProcess] = field(default_factory=dict)
    started: dict[int, float] = field(default_factory=dict)  # shard -> wall-clock launch time
    worker_seconds: float = 0.0  # of workers that ended, for nodeHours
    thread: threading.Thread | None = None


def worker_name(shard: int) -> str:
    return f"batch-worker-{shard}"


class BatchRunner:
    """Runs batch prediction jobs as worker processes on this machine."""

    def __init__(
        self,
        jobs_root: Path,
        *,
        executor: Executor | None = None,
        identities: UidAllocator | None = None,
        home_id: str | None = None,
        grace_s: float = DEFAULT_GRACE_S,
    ) -> None:
        """`jobs_root`: where job directories live (the training runner's too, so the logs
        route reads a prediction job's worker logs like a trainer's)."""
        self.jobs_root = jobs_root
        self._executor = executor or LocalProcessExecutor()
        self._identities = identities
        self._home_id = home_id
        self._grace_s = grace_s
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._lock = threading.Lock()
        self._closed = False

    # ----- public API ---------------------------------------------------------------------

    def start(
        self,
        project: str,
        job_id: str,
        plan: BatchPlan,
        *,
        on_state: Callable[[str], None],
        on_progress: Callable[[int, int], None],
        on_finished: Callable[[BatchOutcome], None],
    ) -> None:
        job_dir = self.jobs_root / project / job_id
        job_dir.mkdir(parents=True, exist_ok=True)
        job = _Job((project, job_id), job_dir, plan, on_state, on_progress, on_finished)
        job.run_as = self._job_identity(project, job_id)
        try:
            self._open_job_dir(job)
            plan_path = job_dir / PLAN_FILE
            plan_path.write_text(json.dumps(plan.to_json()))
            if job.run_as is not None:
                job.run_as.give(plan_path, 0o600)
            # A fresh start: outputs of an earlier attempt under this job id do not count.
            for shard in range(plan.shards):
                done_path(job_dir / "work", shard).unlink(missing_ok=True)
                progress_path(job_dir / "work", shard).unlink(missing_ok=True)
            (job_dir / RECORD_FILE).unlink(missing_ok=True)
            self._register(job)
        except BaseException:
            self._release(project, job_id)
            raise
        job.thread = threading.Thread(
            target=self._run, args=(job, False), name=f"cairn-batch-{job_id}", daemon=True
        )
        job.thread.start()

    def recover(
        self,
        project: str,
        job_id: str,
        *,
        on_state: Callable[[str], None],
        on_progress: Callable[[int, int], None],
        on_finished: Callable[[BatchOutcome], None],
    ) -> bool:
        """Resume a job a previous server started; False when it had launched nothing."""
        job_dir = self.jobs_root / project / job_id
        record = read_json(job_dir / RECORD_FILE)
        try:
            plan = BatchPlan.read(job_dir / PLAN_FILE)
        except (OSError, ValueError, TypeError):
            plan = None
        if record is None or plan is None:
            self._release(project, job_id)
            return False
        job = _Job((project, job_id), job_dir, plan, on_state, on_progress, on_finished)
        if record.get("home_id") != self._home_id:
            if self._identities is not None:
                self._identities.forget(_owner(project, job_id))
            self._register(job)
            self._deliver_later(job, BatchOutcome("FAILED", FOREIGN_HOME_MESSAGE))
            return True
        if self._identities is not None and record.get("uid") is not None:
            job.run_as = self._identities.adopt(_owner(project, job_id), int(record["uid"]))
        job.worker_seconds = float(record.get("worker_seconds") or 0.0)
        for entry in record.get("workers") or []:
            shard = int(entry["shard"])
            adopted = self._executor.adopt(ReplicaRecord.from_json(entry["record"]))
            if adopted is not None:
                job.workers[shard] = adopted
                job.started[shard] = float(entry.get("started") or time.time())
        self._register(job)
        job.thread = threading.Thread(
            target=self._run, args=(job, True), name=f"cairn-batch-{job_id}", daemon=True
        )
        job.thread.start()
        return True

    def cancel(self, project: str, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get((project, job_id))
        if job is not None:
            job.stop_reason = job.stop_reason or "cancel"
            job.stop.set()

    def is_running(self, project: str, job_id: str) -> bool:
        with self._lock:
            return (project, job_id) in self._jobs

    def shutdown(self) -> None:
        """Server stopping: end every worker; each job reports FAILED."""
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop_reason = "shutdown"
            job.stop.set()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout=self._grace_s * 2 + 10)

    # ----- the job's thread ---------------------------------------------------------------

    def _run(self, job: _Job, recovering: bool) -> None:
        try:
            if recovering:
                job.stop.wait(_SETTLE_S)  # let the caller finish recovering first
            outcome = self._launch_and_watch(job)
        except Exception as exc:
            log.exception("batch job %s failed inside Cairn", job.key)
            self._end_all(job)
            outcome = BatchOutcome("FAILED", f"Cairn could not run the job: {exc}")
        self._deliver(job, outcome)

    def _launch_and_watch(self, job: _Job) -> BatchOutcome:
        work_dir = job.job_dir / "work"
        for shard in range(job.plan.shards):
            if job.stop.is_set():
                break
            if shard in job.workers or done_path(work_dir, shard).exists():
                continue
            job.workers[shard] = self._launch(job, shard)
            job.started[shard] = time.time()
        self._write_record(job)
        if not job.stop.is_set():
            self._notify(job.on_state, "RUNNING")
        return self._watch(job)

    def _watch(self, job: _Job) -> BatchOutcome:
        work_dir = job.job_dir / "work"
        pending = dict(job.workers)
        next_progress = 0.0
        while True:
            if job.stop.is_set():
                self._end_all(job)
                counts = self._counts(job)
                if job.stop_reason == "shutdown":
                    return BatchOutcome("FAILED", SHUTDOWN_MESSAGE, *counts)
                return BatchOutcome("CANCELLED", None, *counts)
            for shard, process in list(pending.items()):
                try:
                    code = process.poll()
                except ReplicaLost as exc:
                    self._end_all(job)
                    return BatchOutcome("FAILED", str(exc), *self._counts(job))
                if code is None:
                    continue
                del pending[shard]
                job.worker_seconds += max(0.0, time.time() - job.started.get(shard, time.time()))
                job.started.pop(shard, None)
                self._write_record(job)
                if code != 0 or not done_path(work_dir, shard).exists():
                    self._end_all(job)
                    message = _failure_message(shard, code, Path(process.record.stderr_path))
                    return BatchOutcome("FAILED", message, *self._counts(job))
            if not pending:
                return BatchOutcome("SUCCEEDED", None, *self._counts(job))
            if time.monotonic() >= next_progress:
                predictions, errors, _ = self._counts(job)
                self._notify_progress(job, predictions, errors)
                next_progress = time.monotonic() + _PROGRESS_EVERY_S
            job.stop.wait(_POLL_S)

    def _counts(self, job: _Job) -> tuple[int, int, float]:
        """(predictions, errors, node hours) so far: done shards' totals, others' progress."""
        work_dir = job.job_dir / "work"
        predictions = errors = 0
        for shard in range(job.plan.shards):
            counts = read_json(done_path(work_dir, shard)) or read_json(
                progress_path(work_dir, shard)
            )
            if counts:
                predictions += int(counts.get("predictions") or 0)
                errors += int(counts.get("errors") or 0)
        running = sum(max(0.0, time.time() - t) for t in job.started.values())
        return predictions, errors, (job.worker_seconds + running) / 3600.0

    def _launch(self, job: _Job, shard: int) -> ReplicaProcess:
        name = worker_name(shard)
        logs = job.job_dir / "logs"
        python = job.plan.python or sys.executable
        return self._executor.launch(
            LaunchSpec(
                name=name,
                argv=[
                    python,
                    "-m",
                    "cairn.serving.batch.worker",
                    "--plan",
                    str(job.job_dir / PLAN_FILE),
                    "--shard",
                    str(shard),
                ],
                env=self._environment(job),
                cwd=job.job_dir / "work",
                log_path=logs / f"{name}.log",
                stderr_path=logs / f"{name}.stderr",
                exit_path=job.job_dir / "exit" / f"{name}.code",
                run_as=job.run_as,
            )
        )

    def _environment(self, job: _Job) -> dict[str, str]:
        env = user_code_environment()
        if job.run_as is not None:
            env = job.run_as.environment(env, home=job.job_dir / "work")
        # The version's own interpreter finds Cairn's code the way prediction nodes do.
        source_root = str(Path(cairn.__file__).resolve().parents[1])
        paths = [source_root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["CLOUD_ML_JOB_ID"] = job.key[1]
        return env

    def _write_record(self, job: _Job) -> None:
        record = {
            "home_id": self._home_id,
            "uid": job.run_as.uid if job.run_as is not None else None,
            "worker_seconds": job.worker_seconds,
            "workers": [
                {
                    "shard": shard,
                    "record": process.record.to_json(),
                    "started": job.started.get(shard),
                }
                for shard, process in job.workers.items()
            ],
        }
        path = job.job_dir / RECORD_FILE
        temporary = path.with_name(f".{RECORD_FILE}.tmp")
        temporary.write_text(json.dumps(record))
        os.replace(temporary, path)

    def _end_all(self, job: _Job) -> None:
        threads = [
            threading.Thread(target=p.terminate, args=(self._grace_s,), daemon=True)
            for p in job.workers.values()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _deliver_later(self, job: _Job, outcome: BatchOutcome) -> None:
        def deliver() -> None:
            job.stop.wait(_SETTLE_S)
            self._deliver(job, outcome)

        job.thread = threading.Thread(target=deliver, name=f"cairn-batch-{job.key[1]}", daemon=True)
        job.thread.start()

    def _deliver(self, job: _Job, outcome: BatchOutcome) -> None:
        with self._lock:
            self._jobs.pop(job.key, None)
        self._release(*job.key)
        try:
            job.on_finished(outcome)
        except Exception:
            log.exception("on_finished of batch job %s raised", job.key)

    def _notify(self, callback: Callable[[str], None], state: str) -> None:
        try:
            callback(state)
        except Exception:
            log.exception("on_state(%s) raised", state)

    def _notify_progress(self, job: _Job, predictions: int, errors: int) -> None:
        try:
            job.on_progress(predictions, errors)
        except Exception:
            log.exception("on_progress of batch job %s raised", job.key)

    # ----- identities and directories -----------------------------------------------------

    def _register(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise ApiError(Code.UNAVAILABLE, "The Cairn server is stopping; submit again.")
            if job.key in self._jobs:
                raise failed_precondition(f"Job {job.key[1]} is already running.")
            self._jobs[job.key] = job

    def _job_identity(self, project: str, job_id: str) -> RunAs | None:
        if self._identities is None:
            return None
        return self._identities.allocate(_owner(project, job_id))

    def _open_job_dir(self, job: _Job) -> None:
        """Let the job's uid (alone) pass through its directory, as for a training job."""
        if job.run_as is None:
            return
        project_dir = job.job_dir.parent
        if group_grant(project_dir, job.run_as.gid) != SEARCH:
            grant_group(project_dir, job.run_as.gid, SEARCH)
        remove_default(project_dir)
        job.run_as.grant(job.job_dir, SEARCH)

    def _release(self, project: str, job_id: str) -> None:
        """The job ended: shut its uid out of the job directory and free it."""
        if self._identities is None:
            return
        owner = _owner(project, job_id)
        run_as = self._identities.find(owner)
        if run_as is None:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                revoke_user(self.jobs_root / project / job_id, run_as.uid)
            self._identities.release(owner)
        except Exception:
            log.exception("could not release the uid of batch job %s/%s", project, job_id)


def _owner(project: str, job_id: str) -> str:
    """The name a job's uid is allocated under (the same as a training job's)."""
    return f"jobs/{project}/{job_id}"


def _failure_message(shard: int, code: int | None, stderr_path: Path) -> str:
    try:
        lines = stderr_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    tail = "\n".join(lines[-10:])
    if code is not None and code < 0:
        what = f"was killed by signal {-code}"
    else:
        what = f"exited with code {code}"
    message = f"Batch worker {shard} {what}."
    return f"{message} Last lines of its stderr:\n{tail}" if tail else message
