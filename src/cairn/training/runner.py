"""The training runner: runs a job's replicas as child processes and reports how they end.

User code never runs in the server process. `start` returns at once; a background thread
per run prepares the package environment, launches every replica of the cluster through
an executor, watches them, and calls `on_finished` exactly once. A run is one job, or one
tuning trial of a job (`trial_id`), so the tuning engine reuses all of this.

With `identities` (a root server), every job runs as a uid of its own, allocated before
anything of the job is written and kept until the job ends (all its replicas, and every
trial of a tuning job); pip runs as a builder uid of its own per build. The run directory
stays the server's (its run record, logs and job files) and only the job's uid may pass
through it; that uid owns the working directory `work/`, the exit files' directory, the log
files, the metric file's directory and the job files. Other jobs, though in the same group,
can neither list nor open any of it.

A worker or evaluator that crashes while the primary runs is restarted on its own port,
a bounded number of times (`training.restarts`), with a line in the job's service log;
the run record keeps each replica's state and restart count, so this holds across a
server restart too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
import uuid
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
    RunAs,
    UidAllocator,
)
from cairn.executors.acl import (
    SEARCH,
    grant_group,
    group_grant,
    open_tree_to_group,
    remove_default,
    revoke_user,
)
from cairn.training.cluster import ClusterSpec, ReplicaSpec, cluster_for
from cairn.training.containers import ContainerReplicas
from cairn.training.environments import (
    EnvironmentBuildCancelled,
    EnvironmentBuildError,
    EnvironmentCache,
)
from cairn.training.logs import (
    log_paths,
    read_job_logs,
    service_log_path,
    stamp_log,
    times_path,
    write_service_line,
)
from cairn.training.replica_command import (
    LocalPaths,
    RunContext,
    python_module,
    replica_argv,
    replica_env,
)
from cairn.training.restarts import (
    DEFAULT_MAX_RESTARTS,
    DEFAULT_RESTART_DELAY_S,
    final_failure_message,
    may_restart,
    restart_line,
)
from cairn.training.run_state import (
    FAILED,
    RESTARTING,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    ReplicaStatus,
    RunState,
    clear_run_state,
    read_run_state,
    write_run_state,
)
from cairn.training.scheduling import max_running_seconds

log = logging.getLogger(__name__)

SHUTDOWN_MESSAGE = "The Cairn server stopped while the job was running."
FOREIGN_HOME_MESSAGE = (
    "This job's processes were started by the server of another Cairn home (this home is a "
    "copy of it); they were left alone. Submit the job again under a new job id."
)
_POLL_S = 0.2
# How long after its stamp a log line of a running job is handed out (`read_job_logs`).
_LOG_SETTLE_S = 0.5
# Names in a job directory that belong to the run itself, never to a job file.
_RUN_ENTRIES = frozenset({"run.json", "logs", "exit", "work", "trials", "hypertune"})

RunKey = tuple[str, str, str | None]


def _job_owner(project: str, job_id: str) -> str:
    """The name a job's uid is allocated under."""
    return f"jobs/{project}/{job_id}"


@dataclass(frozen=True)
class RunOutcome:
    state: str  # "SUCCEEDED" | "FAILED" | "CANCELLED"
    error_message: str | None = None
    # FAILED because the server stopped (not the run's own doing): a tuning trial runs again.
    interrupted: bool = False


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
    run_as: RunAs | None = None  # the job's own identity (None: the server's user)
    environment: Any = None  # the package environment, once prepared (see _environment_for)
    run_state: RunState | None = None  # the run record, once every replica has launched
    restart_due: dict[str, float] = field(default_factory=dict)  # task name -> monotonic time

    def status(self, task_name: str) -> ReplicaStatus:
        assert self.run_state is not None
        return self.run_state.status.setdefault(task_name, ReplicaStatus())


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
        identities: UidAllocator | None = None,
        home_id: str | None = None,
        api_url: str | None = None,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        restart_delay_s: float = DEFAULT_RESTART_DELAY_S,
        container_engine: str | None = None,
    ) -> None:
        """`identities`: where each job's uid (and each build's) comes from (None: pip and
        replicas run as this process's user). `home_id`: the identity of the home, kept in
        run records so a copy of the home never adopts the original's replicas. `api_url`:
        given to replicas as CAIRN_API. `max_restarts`: how often one worker or evaluator
        is restarted after crashing (0: never, its crash fails the job), `restart_delay_s`
        after the crash. `container_engine`: what runs custom containers (imageUri; see
        training/containers.py): podman, docker, a path, or None for whichever is installed."""
        self.jobs_root = jobs_root
        self.environments = EnvironmentCache(envs_root, pip_args, identities=identities)
        self._storage = storage
        self._identities = identities
        self._executor = executor or LocalProcessExecutor()
        self._home_id = home_id
        self._api_url = api_url
        self._grace_s = grace_s
        self._max_restarts = max(0, max_restarts)
        self._restart_delay_s = max(0.0, restart_delay_s)
        self.containers = ContainerReplicas(container_engine)
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
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        """Start the run in the background; raises `ApiError` at once for a job it cannot run.

        `extra_env` is set in every replica's environment (AI Platform's variables win).
        """
        try:
            containers = self.containers.runs(training_input)  # images instead of packages
            if not containers:
                python_module(training_input)
            package_files = [] if containers else self._package_files(training_input)
            run_as = self._job_identity(project, job_id)
            context = self._context(
                project, job_id, training_input, trial_id, extra_args, extra_env
            )
            self._open_run_dir(context, run_as)
            run = _Run((project, job_id, trial_id), context, on_state, on_finished, run_as=run_as)
            self._register(run)
        except BaseException:
            if trial_id is None:
                self._release_job_if_idle(project, job_id)
            raise
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
        extra_env: Mapping[str, str] | None = None,
    ) -> bool:
        """Take charge of a run a previous server started; False if it never launched.

        True means `on_finished` will be called: live replicas are re-adopted and watched;
        replicas that ended while the server was down are judged by their exit files (the
        primary's exit code decides), and one gone without a trace fails the run; a run
        whose outcome was recorded gets that outcome; a run started by the server of
        another home (this one is a copy) fails without its processes being touched.
        False (no run record: the job was still PREPARING) leaves the job to the caller.
        `extra_env` is accepted like `start`'s; adopted replicas keep the one they began with,
        and the uid they run as (from the run record) stays the job's.
        """
        context = self._context(
            project, job_id, training_input, trial_id, (), extra_env, with_ports=False
        )
        state = read_run_state(context.run_dir)
        if state is None:
            if trial_id is None:
                self._release_job_if_idle(project, job_id)
            return False
        run = _Run((project, job_id, trial_id), context, on_state, on_finished)
        if state.home_id != self._home_id:
            if self._identities is not None:
                # Its uid runs the original home's processes: never end them from here.
                self._identities.forget(_job_owner(project, job_id))
            self._register(run)
            self._deliver_later(run, RunOutcome("FAILED", FOREIGN_HOME_MESSAGE))
            return True
        if self._identities is not None:
            owner = _job_owner(project, job_id)
            # A run record without a uid was started when every job ran as the run-as user.
            run.run_as = (
                self._identities.adopt(owner, state.uid)
                if state.uid is not None
                else self._identities.base
            )
        if state.outcome is not None:
            # It ended and was recorded, but the server died before the job heard of it.
            self._register(run)
            recorded = RunOutcome(
                str(state.outcome["state"]),
                state.outcome.get("error_message"),
                bool(state.outcome.get("interrupted")),
            )
            self._deliver_later(run, recorded)
            return True
        if state.cluster is not None:
            # The replicas' own ports, a trial's parameters and the job's variables: a worker
            # restarted from here gets the command line and TF_CONFIG it had.
            run.context = dataclasses.replace(
                context,
                cluster=state.cluster,
                extra_args=tuple(state.extra_args),
                extra_env={**context.extra_env, **state.extra_env},
            )
        run.run_state = state
        for record in state.replicas:
            if state.status.get(record.name, ReplicaStatus()).state == RESTARTING:
                # Its crash was counted and logged; only the new process was not launched.
                run.restart_due[record.name] = time.monotonic()
            run.replicas[record.name] = self._executor.adopt(record) or _Vanished(record.name)
        self._register(run)
        run.thread = threading.Thread(
            target=self._watch_and_finish,
            args=(run, state.primary),
            name=f"cairn-run-{job_id}",
            daemon=True,
        )
        run.thread.start()
        return True

    def check_containers(self, training_input: Mapping[str, Any]) -> None:
        """Refuse at create a custom-container job this machine cannot run: bad container
        fields (INVALID_ARGUMENT), no working Podman or Docker (FAILED_PRECONDITION)."""
        self.containers.check(training_input)

    def write_job_file(self, project: str, job_id: str, name: str, data: bytes) -> Path:
        """Write `data` to `<job dir>/<name>` for the job's replicas, and return its path.

        Mode 0600, owned by the job's own uid (allocated now if the job has none yet): its
        replicas can read it (e.g. the job's credential, named by
        GOOGLE_APPLICATION_CREDENTIALS), no other job can even reach it, and since the job
        directory is the server's, user code can neither replace nor remove it.
        """
        target = self._job_file(project, job_id, name)
        run_as = self._job_identity(project, job_id)
        self._open_job_dir(project, job_id, run_as)
        temporary = target.with_name(f".{name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if run_as is not None:
                    os.fchown(handle.fileno(), run_as.uid, run_as.gid)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return target

    def remove_job_file(self, project: str, job_id: str, name: str) -> None:
        """Remove a file `write_job_file` wrote (when the job ends); gone already is fine."""
        self._job_file(project, job_id, name).unlink(missing_ok=True)

    def trial_metric_sources(
        self, project: str, job_id: str, training_input: Mapping[str, Any], trial_id: str
    ) -> tuple[Path, list[Path]]:
        """Where a trial's metrics appear: its cloudml-hypertune file, and the directories
        searched for TensorFlow summaries (`<job dir>/<trial id>`, where AI Platform's
        trainers write, and the trial's working directory)."""
        context = self._context(
            project, job_id, training_input, trial_id, (), None, with_ports=False
        )
        summary_dirs = [context.work_dir]
        if job_dir := training_input.get("jobDir"):
            summary_dirs.insert(0, Path(self._storage.localize_arg(str(job_dir))) / trial_id)
        return context.metric_file, summary_dirs

    def job_uid(self, project: str, job_id: str) -> int | None:
        """The uid the job's replicas run as while it holds one (None: not root, or ended)."""
        if self._identities is None:
            return None
        run_as = self._identities.find(_job_owner(project, job_id))
        return None if run_as is None else run_as.uid

    def release_job(self, project: str, job_id: str) -> None:
        """The job ended: end whatever still runs as its uid, shut that uid out of the job's
        directory and free it. Runs of whole jobs do this themselves when they end; a tuning
        engine calls it once the last trial of a job has ended (trials share the job's uid).
        """
        if self._identities is None:
            return
        owner = _job_owner(project, job_id)
        run_as = self._identities.find(owner)
        if run_as is None:
            return
        job_dir = self.jobs_root / project / job_id
        with contextlib.suppress(FileNotFoundError):
            revoke_user(job_dir, run_as.uid)
        self._identities.release(owner)

    def read_logs(
        self, project: str, job_id: str, cursor: str | None, task_name: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """New log lines since `cursor`, of every replica and the service (or only of
        `task_name`) in the order they were written, and the next cursor."""
        # While replicas run, a line's stamp may precede its write by a moment.
        settle_s = _LOG_SETTLE_S if self._matching(project, job_id, None) else 0.0
        return read_job_logs(
            self.jobs_root / project / job_id, cursor, task_name=task_name, settle_s=settle_s
        )

    def replica_states(self, project: str, job_id: str) -> list[dict[str, Any]] | None:
        """Each replica's state, restart count and last exit code (`Job.cairnReplicas`),
        from the job's run record; None before its replicas launch (and for tuning and
        prediction jobs, whose runs are recorded elsewhere)."""
        try:
            state = read_run_state(self.jobs_root / project / job_id)
        except OSError:
            return None
        if state is None or not state.status:
            return None
        # The cluster's order: the primary, workers, parameter servers, evaluators.
        order = [r.task_name for r in state.cluster.replicas] if state.cluster else []
        rendered = []
        for name, status in sorted(
            state.status.items(),
            key=lambda item: order.index(item[0]) if item[0] in order else len(order),
        ):
            replica: dict[str, Any] = {"taskName": name, "state": status.state}
            if status.restart_count:
                replica["restartCount"] = status.restart_count
            if status.exit_code is not None:
                replica["exitCode"] = status.exit_code
            rendered.append(replica)
        return rendered

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

    def _job_identity(self, project: str, job_id: str) -> RunAs | None:
        if self._identities is None:
            return None
        return self._identities.allocate(_job_owner(project, job_id))

    def _release_job_if_idle(self, project: str, job_id: str) -> None:
        """`release_job` unless a run of the job is still registered."""
        with self._lock:
            if any(p == project and j == job_id for p, j, _ in self._runs):
                return
        try:
            self.release_job(project, job_id)
        except Exception:
            log.exception("could not release the uid of job %s/%s", project, job_id)

    def _open_job_dir(self, project: str, job_id: str, run_as: RunAs | None) -> None:
        """Create the job directory; with `run_as`, let that uid (alone) pass through it."""
        job_dir = self.jobs_root / project / job_id
        job_dir.mkdir(parents=True, exist_ok=True)
        if run_as is None:
            return
        project_dir = job_dir.parent
        # Every job's group passes through the project; what is made in it inherits nothing.
        if group_grant(project_dir, run_as.gid) != SEARCH:
            grant_group(project_dir, run_as.gid, SEARCH)
        remove_default(project_dir)
        run_as.grant(job_dir, SEARCH)

    def _open_run_dir(self, context: RunContext, run_as: RunAs | None) -> None:
        """`_open_job_dir`, and the same for a trial's directories."""
        self._open_job_dir(context.job_dir.parent.name, context.job_id, run_as)
        if run_as is not None and context.run_dir != context.job_dir:
            for directory in (context.run_dir.parent, context.run_dir):
                run_as.grant(directory, SEARCH)

    def _job_file(self, project: str, job_id: str, name: str) -> Path:
        if name != Path(name).name or name in ("", ".", "..") or name in _RUN_ENTRIES:
            raise ValueError(f"{name!r} cannot name a job file: give a plain, unused file name.")
        return self.jobs_root / project / job_id / name

    def _context(
        self,
        project: str,
        job_id: str,
        training_input: Mapping[str, Any],
        trial_id: str | None,
        extra_args: Sequence[str],
        extra_env: Mapping[str, str] | None,
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
            extra_env=dict(extra_env or {}),
            api_url=self._api_url,
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
            environment = self._environment_for(run, package_files)
            job_dir = str(context.training_input.get("jobDir") or "")
            if run.run_as is not None and job_dir.startswith("gs://"):
                # A job dir an earlier job (another uid) made in a bucket stays writable for
                # this one (never a server directory the operator allowed: not ours to open).
                open_tree_to_group(Path(self._storage.localize_arg(job_dir)))
            primary = context.cluster.primary
            # Everything else first, the primary last: it usually waits for the others.
            for replica in sorted(context.cluster.replicas, key=lambda r: r is primary):
                if run.stop.is_set():
                    break
                run.replicas[replica.task_name] = self._launch(run, replica, environment)
            run.run_state = RunState(
                primary=primary.task_name,
                replicas=[],
                trial_id=context.trial_id,
                home_id=self._home_id,
                uid=run.run_as.uid if run.run_as is not None else None,
                cluster=context.cluster,
                status={name: ReplicaStatus() for name in run.replicas},
                extra_args=list(context.extra_args),
                extra_env=dict(context.extra_env),
            )
            self._save(run)
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

    def _deliver_later(self, run: _Run, outcome: RunOutcome) -> None:
        """Deliver from a thread, as every run does, once the caller has finished recovering."""

        def deliver() -> None:
            run.stop.wait(_POLL_S)
            self._deliver(run, outcome)

        run.thread = threading.Thread(target=deliver, name=f"cairn-run-{run.key[1]}", daemon=True)
        run.thread.start()

    def _environment_for(self, run: _Run, package_files: list[Path] | None = None) -> Any:
        """The run's package environment, prepared once (pip's output in the service log).

        A run adopted after a server restart prepares it only when a replica is restarted:
        the environment is cached, so that finds it again.
        """
        if self.containers.runs(run.context.training_input):
            return None  # a custom container brings its own
        if run.environment is None:
            files = package_files or self._package_files(run.context.training_input)
            log_path = service_log_path(run.context.run_dir)
            try:
                spec = run.context.training_input  # runtimeVersion: docs/runtimes.md
                run.environment = self.environments.ensure(
                    files,
                    log_path=log_path,
                    cancelled=run.stop,
                    runtime_version=spec.get("runtimeVersion"),
                    python_version=spec.get("pythonVersion"),
                )
            finally:
                stamp_log(log_path)  # pip wrote there: its lines come before any replica's
        return run.environment

    def _launch(self, run: _Run, replica: ReplicaSpec, environment: Any) -> ReplicaProcess:
        """Launch one replica; a restart after a crash comes here again, with the same
        `replica` (so the same port and TF_CONFIG)."""
        context = run.context
        if self.containers.runs(context.training_input):  # training/containers.py
            spec = self.containers.launch_spec(context, replica, run.run_as, self._storage)
            return self._executor.launch(spec)
        log_path, stderr_path = log_paths(context.run_dir, replica.task_name)
        env = replica_env(context, replica, environment, run_as=run.run_as)
        if run.run_as is not None:
            # cloudml-hypertune writes the metric file; its directory is the job's too.
            run.run_as.grant(context.metric_file.parent.parent, SEARCH)
            run.run_as.give(context.metric_file.parent, 0o700)
        return self._executor.launch(
            LaunchSpec(
                name=replica.task_name,
                argv=replica_argv(context, environment, self._storage),
                env=env,
                cwd=context.work_dir,
                log_path=log_path,
                stderr_path=stderr_path,
                exit_path=context.run_dir / "exit" / f"{replica.task_name}.code",
                run_as=run.run_as,
                times_path=times_path(log_path),
            )
        )

    def _watch(self, run: _Run, primary: str) -> RunOutcome:
        """Poll the replicas until the primary succeeds, a replica fails for good, or a stop.

        A worker or evaluator that crashes is restarted while it has restarts left
        (`_restart_later`); any other non-zero exit ends the job.
        """
        deadline: float | None = max_running_seconds(run.context.training_input)
        started = time.monotonic()
        # The primary first: when several replicas ended at once (or while the server was
        # down), the primary's exit decides the outcome.
        pending = {
            name: process
            for name, process in sorted(run.replicas.items(), key=lambda item: item[0] != primary)
            if name not in run.restart_due
        }
        while True:
            if run.stop.is_set():
                self._end_all(run)
                return self._stopped_outcome(run)
            for name, process in list(pending.items()):
                lost: str | None = None
                try:
                    code = process.poll()
                    if code is None:
                        continue
                except ReplicaLost as exc:
                    code, lost = None, str(exc)
                del pending[name]
                if code == 0:
                    self._set_status(run, name, SUCCEEDED, 0)
                    if name == primary:
                        self._end_all(run)  # parameter servers never exit on their own
                        return RunOutcome("SUCCEEDED")
                    continue
                if self._restart_later(run, name, primary, code, process):
                    continue
                self._set_status(run, name, FAILED, code)
                self._end_all(run)
                restarts = run.status(name).restart_count if run.run_state is not None else 0
                stderr_path = process.record.stderr_path
                return RunOutcome(
                    "FAILED", final_failure_message(name, code, stderr_path, restarts, lost)
                )
            now = time.monotonic()
            for name in [n for n, due in run.restart_due.items() if due <= now]:
                pending[name] = self._restart(run, name)
            if not pending and not run.restart_due:
                return RunOutcome("FAILED", f"Replica {primary} is not part of the run.")
            if deadline is not None and time.monotonic() - started > deadline:
                self._end_all(run)
                return RunOutcome(
                    "FAILED",
                    f"The job ran longer than scheduling.maxRunningTime ({deadline:g}s) "
                    "and was stopped.",
                )
            run.stop.wait(_POLL_S)

    def _restart_later(
        self, run: _Run, name: str, primary: str, code: int | None, process: ReplicaProcess
    ) -> bool:
        """Count, log and schedule the restart of a crashed replica, if it may restart."""
        record = run.run_state
        if record is None or record.cluster is None:
            return False  # a run recorded by an older server: its ports are unknown
        status = run.status(name)
        if not may_restart(name, primary, status.restart_count, self._max_restarts):
            return False
        # A lost replica may have left processes behind, holding its port.
        process.terminate(self._grace_s)
        status.restart_count += 1
        status.state, status.exit_code = RESTARTING, code
        write_service_line(
            run.context.run_dir,
            restart_line(name, code, status.restart_count, self._max_restarts),
        )
        self._save(run)
        run.restart_due[name] = time.monotonic() + self._restart_delay_s
        return True

    def _restart(self, run: _Run, name: str) -> ReplicaProcess:
        """Launch a crashed replica again, as it was launched the first time."""
        del run.restart_due[name]
        replica = next(r for r in run.context.cluster.replicas if r.task_name == name)
        try:
            process = self._launch(run, replica, self._environment_for(run))
        except Exception as exc:
            raise RuntimeError(f"restarting replica {name} failed: {exc}") from exc
        run.replicas[name] = process
        status = run.status(name)
        status.state, status.exit_code = RUNNING, None  # why it restarted: the service log
        # A crash right here would leave the new process unrecorded (as at first launch).
        self._save(run)
        return process

    def _set_status(self, run: _Run, name: str, state: str, code: int | None) -> None:
        if run.run_state is None:
            return
        status = run.status(name)
        status.state, status.exit_code = state, code
        self._save(run)

    def _save(self, run: _Run) -> None:
        """Write the run record as it stands: every replica's process and state."""
        if run.run_state is None:
            return
        run.run_state.replicas = [p.record for p in run.replicas.values()]
        write_run_state(run.context.run_dir, run.run_state)

    @staticmethod
    def _exit_code(process: ReplicaProcess | None) -> int | None:
        try:
            return process.poll() if process is not None else None
        except ReplicaLost:
            return None

    def _stopped_outcome(self, run: _Run) -> RunOutcome:
        if run.stop_reason == "shutdown":
            return RunOutcome("FAILED", SHUTDOWN_MESSAGE, interrupted=True)
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
        state = run.run_state or read_run_state(run.context.run_dir)
        if state is not None:
            for name, status in state.status.items():
                if status.state in (RUNNING, RESTARTING):
                    # Done by itself just as the job ended, or ended by Cairn with the job.
                    done = self._exit_code(run.replicas.get(name)) == 0
                    status.state, status.exit_code = (SUCCEEDED, 0) if done else (STOPPED, None)
            state.outcome = {
                "state": outcome.state,
                "error_message": outcome.error_message,
                "interrupted": outcome.interrupted,
            }
            write_run_state(run.context.run_dir, state)
        self._deliver(run, outcome)

    def _deliver(self, run: _Run, outcome: RunOutcome) -> None:
        with self._lock:
            self._runs.pop(run.key, None)
        project, job_id, trial_id = run.key
        if trial_id is None:
            self._release_job_if_idle(project, job_id)
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
        self.record = ReplicaRecord(name=name, log_path="", stderr_path="", exit_path="")

    def poll(self) -> int | None:
        raise ReplicaLost(
            f"Replica {self.record.name} was gone after the Cairn server restarted "
            "and left no exit status."
        )

    def terminate(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        return None

    def is_alive(self) -> bool:
        return False
