"""The training runner: runs a job's replicas as child processes and reports how they end.

User code never runs in the server process. `start` returns at once; a background thread
per run prepares the package environment, launches every replica of the cluster through
an executor, watches them, and calls `on_finished` exactly once. A run is one job, or one
tuning trial of a job (`trial_id`), so the tuning engine reuses all of this.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.domain.errors import ApiError, Code, failed_precondition, invalid_field
from cairn.executors import (
    DEFAULT_GRACE_S,
    Executor,
    LaunchSpec,
    LocalProcessExecutor,
    ReplicaLost,
    ReplicaProcess,
    ReplicaRecord,
)
from cairn.training.cluster import ClusterSpec, ReplicaSpec, cluster_for
from cairn.training.environments import (
    EnvironmentBuildCancelled,
    EnvironmentBuildError,
    EnvironmentCache,
)
from cairn.training.failure import replica_failure_message
from cairn.training.logs import log_paths, read_job_logs, service_log_path
from cairn.training.replica_command import (
    LocalPaths,
    RunContext,
    python_module,
    replica_argv,
    replica_env,
)
from cairn.training.run_state import RunState, clear_run_state, read_run_state, write_run_state
from cairn.training.scheduling import max_running_seconds

log = logging.getLogger(__name__)

SHUTDOWN_MESSAGE = "The Cairn server stopped while the job was running."
_POLL_S = 0.2

RunKey = tuple[str, str, str | None]


@dataclass(frozen=True)
class RunOutcome:
    state: str  # "SUCCEEDED" | "FAILED" | "CANCELLED"
    error_message: str | None = None


@dataclass
class _Run:
    key: RunKey
    context: RunContext
    on_state: Callable[[str], None]
    on_finished: Callable[[RunOutcome], None]
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str | None = None  # "cancel" or "shutdown"
    replicas: dict[str, ReplicaProcess] = field(default_factory=dict)
    thread: threading.Thread | None = None


class TrainingRunner:
    """Runs training jobs (and tuning trials) as real processes on this machine."""

    def __init__(
        self,
        jobs_root: Path,
        envs_root: Path,
        storage: LocalPaths,
        *,
        executor: Executor | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        pip_args: Sequence[str] = (),
    ) -> None:
        self.jobs_root = jobs_root
        self.environments = EnvironmentCache(envs_root, pip_args)
        self._storage = storage
        self._executor = executor or LocalProcessExecutor()
        self._grace_s = grace_s
        self._runs: dict[RunKey, _Run] = {}
        self._lock = threading.Lock()
        self._closed = False

    # ----- public API ---------------------------------------------------------------------

    def start(
        self,
        project: str,
        job_id: str,
        training_input: Mapping[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[RunOutcome], None],
        trial_id: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        """Start the run in the background; raises `ApiError` at once for a job it cannot run."""
        python_module(training_input)
        package_files = self._package_files(training_input)
        context = self._context(project, job_id, training_input, trial_id, extra_args)
        run = _Run((project, job_id, trial_id), context, on_state, on_finished)
        self._register(run)
        clear_run_state(context.run_dir)
        run.thread = threading.Thread(
            target=self._execute,
            args=(run, package_files),
            name=f"cairn-run-{job_id}" + (f"-trial-{trial_id}" if trial_id else ""),
            daemon=True,
        )
        run.thread.start()

    def cancel(self, project: str, job_id: str, trial_id: str | None = None) -> None:
        """End every replica of the job (or of one trial); `on_finished` gets CANCELLED."""
        for run in self._matching(project, job_id, trial_id):
            run.stop_reason = run.stop_reason or "cancel"
            run.stop.set()

    def recover(
        self,
        project: str,
        job_id: str,
        training_input: Mapping[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[RunOutcome], None],
        trial_id: str | None = None,
    ) -> bool:
        """Re-adopt a run whose replicas outlived a server restart; False if none still runs.

        A run that ended while the server was down is not adopted (False): the job service
        then fails the job as interrupted. Replicas that ended in the meantime beside live
        ones are judged by their exit files, and one gone without a trace fails the run.
        """
        context = self._context(project, job_id, training_input, trial_id, (), with_ports=False)
        state = read_run_state(context.run_dir)
        if state is None or state.outcome is not None:
            return False
        adopted = {r.name: self._executor.adopt(r) for r in state.replicas}
        if not any(p is not None and p.is_alive() for p in adopted.values()):
            # Nothing to watch; end what the ended replicas may have left running.
            leftovers = [p for p in adopted.values() if p is not None]
            threading.Thread(
                target=lambda: [p.terminate(self._grace_s) for p in leftovers], daemon=True
            ).start()
            return False
        run = _Run((project, job_id, trial_id), context, on_state, on_finished)
        for name, process in adopted.items():
            run.replicas[name] = process if process is not None else _Vanished(name)
        self._register(run)
        run.thread = threading.Thread(
            target=self._watch_and_finish,
            args=(run, state.primary),
            name=f"cairn-run-{job_id}",
            daemon=True,
        )
        run.thread.start()
        return True

    def read_logs(
        self, project: str, job_id: str, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str]:
        """New log lines of every replica since `cursor`, and the next cursor."""
        return read_job_logs(self.jobs_root / project / job_id, cursor)

    def shutdown(self) -> None:
        """Server stopping: end all runs; each reports FAILED with `SHUTDOWN_MESSAGE`."""
        with self._lock:
            self._closed = True
            runs = list(self._runs.values())
        for run in runs:
            run.stop_reason = "shutdown"
            run.stop.set()
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=self._grace_s * 2 + 10)

    def is_running(self, project: str, job_id: str, trial_id: str | None = None) -> bool:
        with self._lock:
            return (project, job_id, trial_id) in self._runs

    # ----- setting a run up ---------------------------------------------------------------

    def _register(self, run: _Run) -> None:
        with self._lock:
            if self._closed:
                raise ApiError(Code.UNAVAILABLE, "The Cairn server is stopping; submit again.")
            if run.key in self._runs:
                raise failed_precondition(f"Job {run.key[1]} is already running.")
            self._runs[run.key] = run

    def _matching(self, project: str, job_id: str, trial_id: str | None) -> list[_Run]:
        with self._lock:
            return [
                run
                for (p, j, t), run in self._runs.items()
                if p == project and j == job_id and (trial_id is None or t == trial_id)
            ]

    def _context(
        self,
        project: str,
        job_id: str,
        training_input: Mapping[str, Any],
        trial_id: str | None,
        extra_args: Sequence[str],
        *,
        with_ports: bool = True,
    ) -> RunContext:
        job_dir = self.jobs_root / project / job_id
        run_dir = job_dir / "trials" / trial_id if trial_id is not None else job_dir
        cluster = cluster_for(training_input) if with_ports else ClusterSpec((), "chief")
        run_dir.mkdir(parents=True, exist_ok=True)
        return RunContext(
            job_id=job_id,
            training_input=dict(training_input),
            cluster=cluster,
            job_dir=job_dir,
            run_dir=run_dir,
            trial_id=trial_id,
            extra_args=tuple(extra_args),
        )

    def _package_files(self, training_input: Mapping[str, Any]) -> list[Path]:
        uris = [str(u) for u in training_input.get("packageUris") or []]
        if not uris:
            raise invalid_field(
                "job.training_input.package_uris",
                "Give at least one package (an sdist or wheel in a gs:// bucket).",
            )
        files = []
        for i, uri in enumerate(uris):
            path = Path(self._storage.local_path(uri)) if "://" in uri else Path(uri)
            if not path.is_file():
                raise invalid_field(
                    f"job.training_input.package_uris[{i}]",
                    f"The package {uri} does not exist; upload it first "
                    "(cairn storage cp PACKAGE gs://BUCKET/PATH).",
                )
            files.append(path)
        return files

    # ----- the run's thread ---------------------------------------------------------------

    def _execute(self, run: _Run, package_files: list[Path]) -> None:
        context = run.context
        outcome: RunOutcome | None = None
        try:
            self._notify(run.on_state, "PREPARING")
            environment = self.environments.ensure(
                package_files, log_path=service_log_path(context.run_dir), cancelled=run.stop
            )
            primary = context.cluster.primary
            # Everything else first, the primary last: it usually waits for the others.
            for replica in sorted(context.cluster.replicas, key=lambda r: r is primary):
                if run.stop.is_set():
                    break
                run.replicas[replica.task_name] = self._launch(run, replica, environment)
            write_run_state(
                context.run_dir,
                RunState(
                    primary=primary.task_name,
                    replicas=[p.record for p in run.replicas.values()],
                    trial_id=context.trial_id,
                ),
            )
            if not run.stop.is_set():
                self._notify(run.on_state, "RUNNING")
            outcome = self._watch(run, primary.task_name)
        except EnvironmentBuildCancelled:
            outcome = self._stopped_outcome(run)
        except EnvironmentBuildError as exc:
            outcome = RunOutcome("FAILED", str(exc))
        except Exception as exc:
            log.exception("run %s failed inside Cairn", run.key)
            self._end_all(run)
            outcome = RunOutcome("FAILED", f"Cairn could not run the job: {exc}")
        self._record_and_deliver(run, outcome)

    def _watch_and_finish(self, run: _Run, primary: str) -> None:
        try:
            # Let the caller finish registering the adopted job before it can end.
            run.stop.wait(_POLL_S)
            self._notify(run.on_state, "RUNNING")
            outcome = self._watch(run, primary)
        except Exception as exc:
            log.exception("run %s failed inside Cairn", run.key)
            self._end_all(run)
            outcome = RunOutcome("FAILED", f"Cairn lost track of the job: {exc}")
        self._record_and_deliver(run, outcome)

    def _launch(self, run: _Run, replica: ReplicaSpec, environment: Any) -> ReplicaProcess:
        context = run.context
        log_path, stderr_path = log_paths(context.run_dir, replica.task_name)
        return self._executor.launch(
            LaunchSpec(
                name=replica.task_name,
                argv=replica_argv(context, environment, self._storage),
                env=replica_env(context, replica, environment),
                cwd=context.run_dir,
                log_path=log_path,
                stderr_path=stderr_path,
                exit_path=context.run_dir / "exit" / f"{replica.task_name}.code",
            )
        )

    def _watch(self, run: _Run, primary: str) -> RunOutcome:
        """Poll the replicas until the primary succeeds, any replica fails, or a stop."""
        deadline: float | None = max_running_seconds(run.context.training_input)
        started = time.monotonic()
        pending = dict(run.replicas)
        while True:
            if run.stop.is_set():
                self._end_all(run)
                return self._stopped_outcome(run)
            for name, process in list(pending.items()):
                try:
                    code = process.poll()
                except ReplicaLost as exc:
                    self._end_all(run)
                    return RunOutcome("FAILED", str(exc))
                if code is None:
                    continue
                del pending[name]
                if code != 0:
                    self._end_all(run)
                    return RunOutcome(
                        "FAILED", replica_failure_message(name, code, process.record.stderr_path)
                    )
                if name == primary:
                    self._end_all(run)  # parameter servers never exit on their own
                    return RunOutcome("SUCCEEDED")
            if not pending:
                return RunOutcome("FAILED", f"Replica {primary} is not part of the run.")
            if deadline is not None and time.monotonic() - started > deadline:
                self._end_all(run)
                return RunOutcome(
                    "FAILED",
                    f"The job ran longer than scheduling.maxRunningTime ({deadline:g}s) "
                    "and was stopped.",
                )
            run.stop.wait(_POLL_S)

    def _stopped_outcome(self, run: _Run) -> RunOutcome:
        if run.stop_reason == "shutdown":
            return RunOutcome("FAILED", SHUTDOWN_MESSAGE)
        return RunOutcome("CANCELLED")

    def _end_all(self, run: _Run) -> None:
        """End every replica's process tree, in parallel so grace periods do not add up."""
        threads = [
            threading.Thread(target=p.terminate, args=(self._grace_s,), daemon=True)
            for p in run.replicas.values()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _record_and_deliver(self, run: _Run, outcome: RunOutcome) -> None:
        state = read_run_state(run.context.run_dir)
        if state is not None:
            state.outcome = {"state": outcome.state, "error_message": outcome.error_message}
            write_run_state(run.context.run_dir, state)
        self._deliver(run, outcome)

    def _deliver(self, run: _Run, outcome: RunOutcome) -> None:
        with self._lock:
            self._runs.pop(run.key, None)
        try:
            run.on_finished(outcome)
        except Exception:
            log.exception("on_finished of run %s raised", run.key)

    @staticmethod
    def _notify(on_state: Callable[[str], None], state: str) -> None:
        try:
            on_state(state)
        except Exception:
            log.exception("on_state(%s) raised", state)


class _Vanished(ReplicaProcess):
    """A replica found neither running nor with an exit status after a restart."""

    def __init__(self, name: str) -> None:
        self.record = ReplicaRecord(name, 0, 0.0, "", "", "")

    def poll(self) -> int | None:
        raise ReplicaLost(
            f"Replica {self.record.name} was gone after the Cairn server restarted "
            "and left no exit status."
        )

    def terminate(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        return None

    def is_alive(self) -> bool:
        return False
