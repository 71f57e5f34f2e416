"""Custom containers: a job whose `masterConfig.imageUri` names an image runs it per replica.

AI Platform's rules (reference §3.1-3.3): each role's `ReplicaConfig.imageUri` falls back
to the master's; `containerCommand` replaces the image's ENTRYPOINT and `containerArgs` its
CMD; without them the job's `args` (then `--job-dir`, and a tuning trial's parameters) go
after the ENTRYPOINT; `args` and `containerCommand`/`containerArgs` exclude each other.
The replica gets the same contract as a package replica: TF_CONFIG (primary `master`
unless `useChiefInTfConfig`), CLOUD_ML_JOB_ID, the trial's variables, the job's credential
file (mounted read-only), its working directory, the metric file's directory and the local
buckets that `--job-dir` and the arguments name (each mounted at its own path, so the
localized paths in the arguments work unchanged), host networking for the cluster's ports
and the server's API, and the job's own uid.

`ContainerReplicas` is the training runner's side: the check at create, and the launch
specification of each replica (`executors.container` runs it).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.domain.errors import failed_precondition, invalid_field
from cairn.executors import LaunchSpec, RunAs, user_code_environment
from cairn.executors.container import ContainerEngine, ContainerRun, Mount, write_env_file
from cairn.training.cluster import EVALUATOR, MASTER, PS, WORKER, ReplicaSpec
from cairn.training.environments import PythonEnvironment
from cairn.training.logs import log_paths, times_path
from cairn.training.replica_command import LocalPaths, RunContext, replica_env

# The ReplicaConfig each role of the cluster reads.
CONFIG_FIELDS = {
    MASTER: "masterConfig",
    WORKER: "workerConfig",
    PS: "parameterServerConfig",
    EVALUATOR: "evaluatorConfig",
}
_SNAKE = {
    "masterConfig": "master_config",
    "workerConfig": "worker_config",
    "parameterServerConfig": "parameter_server_config",
    "evaluatorConfig": "evaluator_config",
}
# An image reference ([registry[:port]/]name[:tag][@digest]); never starting with '-', which
# the engine would read as one of its options.
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,1023}")
# Variables of a package replica that name this machine's Python environment: an image has
# its own interpreter and PATH.
_HOST_ONLY = frozenset({"PATH", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE"})
# `replica_env` names a Python environment; the variables it sets from one are dropped.
_NO_ENVIRONMENT = PythonEnvironment(Path("/nonexistent"))


@dataclass(frozen=True)
class ReplicaContainer:
    """What one role runs: its image and, when set, its command and arguments."""

    image: str
    command: tuple[str, ...]
    container_args: tuple[str, ...] | None  # None: the job's args (and --job-dir) instead


def _config(training_input: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = training_input.get(field)
    return value if isinstance(value, Mapping) else {}


def is_container_job(training_input: Mapping[str, Any]) -> bool:
    """Whether the job runs images (`masterConfig.imageUri`) rather than Python packages."""
    return bool(_config(training_input, "masterConfig").get("imageUri"))


def replica_container(training_input: Mapping[str, Any], role: str) -> ReplicaContainer:
    """The image, command and arguments of `role` (falling back to the master's)."""
    master = _config(training_input, "masterConfig")
    own = _config(training_input, CONFIG_FIELDS[role])
    # A role without an image of its own runs the master's, with the master's command too.
    source = own if own.get("imageUri") else master
    args = source.get("containerArgs")
    return ReplicaContainer(
        image=str(source.get("imageUri")),
        command=tuple(str(c) for c in source.get("containerCommand") or ()),
        container_args=tuple(str(a) for a in args) if args else None,
    )


def check_container_fields(training_input: Mapping[str, Any]) -> None:
    """AI Platform's rules for imageUri, containerCommand and containerArgs (INVALID_ARGUMENT)."""
    path = "job.training_input"
    containers = is_container_job(training_input)
    uses_container_fields = False
    for field in CONFIG_FIELDS.values():
        config = _config(training_input, field)
        where = f"{path}.{_SNAKE[field]}"
        image = config.get("imageUri")
        if image is not None and not _IMAGE.fullmatch(str(image)):
            raise invalid_field(
                f"{where}.image_uri",
                f"{str(image)[:200]!r} is not an image reference like "
                "gcr.io/PROJECT/IMAGE:TAG or localhost/IMAGE:TAG.",
            )
        if image and not containers:
            raise invalid_field(
                f"{where}.image_uri",
                "Set masterConfig.imageUri too: a job runs either containers (the master's "
                "image, which other roles may replace) or Python packages.",
            )
        for name, snake in (
            ("containerCommand", "container_command"),
            ("containerArgs", "container_args"),
        ):
            if config.get(name):
                uses_container_fields = True
                if not containers:
                    raise invalid_field(
                        f"{where}.{snake}",
                        f"{name} needs a custom container: set masterConfig.imageUri.",
                    )
        command = config.get("containerCommand") or []
        if command and not str(command[0]).strip():
            raise invalid_field(
                f"{where}.container_command",
                "The first element of containerCommand is the executable; it cannot be empty.",
            )
    if uses_container_fields and training_input.get("args"):
        raise invalid_field(
            f"{path}.args",
            "args cannot be combined with containerCommand or containerArgs (AI Platform's "
            "rule): put the arguments in containerArgs.",
        )


def container_args(
    training_input: Mapping[str, Any],
    role: str,
    storage: LocalPaths,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """What follows the entrypoint: containerArgs, or the job's args then --job-dir, then a
    trial's parameters; gs:// URIs of local buckets become their paths, as for packages."""
    chosen = replica_container(training_input, role).container_args
    if chosen is not None:
        args = [storage.localize_arg(a) for a in chosen]
    else:
        args = [storage.localize_arg(str(a)) for a in training_input.get("args") or []]
        if job_dir := training_input.get("jobDir"):
            args += ["--job-dir", storage.localize_arg(str(job_dir))]
    return args + [str(a) for a in extra_args]


def _bucket_dirs(values: Sequence[str], storage: LocalPaths) -> list[Path]:
    """The existing local bucket directories that gs:// URIs among `values` name."""
    found: list[Path] = []
    for value in values:
        flag, equals, rest = value.partition("=")
        uri = rest if equals and flag.startswith("-") else value
        if not uri.startswith("gs://"):
            continue
        bucket = uri.removeprefix("gs://").partition("/")[0]
        if not bucket:
            continue
        try:
            directory = Path(storage.local_path(f"gs://{bucket}"))
        except Exception:  # an invalid bucket name: the argument goes through unchanged
            continue
        # A bucket that is a link (user code can make one) is not followed: root mounts
        # it, and a link to a directory deep inside a private one would skip that one's
        # permissions.
        if directory.is_dir() and _unlinked(directory) and directory not in found:
            found.append(directory)
    return found


def _unlinked(path: Path) -> bool:
    """Whether no component of the absolute `path` is a symbolic link."""
    return path.is_absolute() and os.path.realpath(path) == str(path)


class ContainerReplicas:
    """Custom-container replicas for the training runner: checked at create, launched later."""

    def __init__(self, engine: str | None = None) -> None:
        """`engine`: `podman`, `docker`, a path to either, or None for whichever is installed."""
        self.engine = ContainerEngine(engine)

    def runs(self, training_input: Mapping[str, Any]) -> bool:
        return is_container_job(training_input)

    def check(self, training_input: Mapping[str, Any]) -> None:
        """Refuse at create what could never run: bad container fields (INVALID_ARGUMENT),
        no working engine on this machine (FAILED_PRECONDITION, naming what is missing)."""
        check_container_fields(training_input)
        if not is_container_job(training_input):
            return
        if (problem := self.engine.problem()) is not None:
            raise failed_precondition(problem)

    def launch_spec(
        self,
        context: RunContext,
        replica: ReplicaSpec,
        run_as: RunAs | None,
        storage: LocalPaths,
    ) -> LaunchSpec:
        """The replica as a supervised `podman run`: the engine runs as the server's user,
        the user code inside as `run_as` (the job's uid; None: the server's own)."""
        training_input = context.training_input
        chosen = replica_container(training_input, replica.role)
        env = {
            key: value
            for key, value in replica_env(
                context, replica, _NO_ENVIRONMENT, base={}, run_as=run_as
            ).items()
            if key not in _HOST_ONLY
        }
        env["HOME"] = str(context.work_dir)
        args = container_args(training_input, replica.role, storage, context.extra_args)

        context.work_dir.mkdir(parents=True, exist_ok=True)
        metric_dir = context.metric_file.parent
        metric_dir.mkdir(parents=True, exist_ok=True)
        if run_as is not None:
            # What the container writes as the job's uid is the uid's, as for packages.
            run_as.give(context.work_dir, 0o700)
            run_as.give(metric_dir, 0o700)
        mounts = [Mount(context.work_dir, context.work_dir), Mount(metric_dir, metric_dir)]
        credential = env.get("GOOGLE_APPLICATION_CREDENTIALS")
        if credential and Path(credential).is_file():
            mounts.append(Mount(Path(credential), Path(credential), read_only=True))
        job_dir = str(training_input.get("jobDir") or "")
        if job_dir:
            local_job_dir = Path(storage.localize_arg(job_dir))
            local_job_dir.mkdir(parents=True, exist_ok=True)
            # A server path the operator allowed (CAIRN_LOCAL_ROOTS) rather than a bucket.
            if not job_dir.startswith("gs://") and _unlinked(local_job_dir):
                mounts.append(Mount(local_job_dir, local_job_dir))
        named = [str(a) for a in training_input.get("args") or []]
        named += [*(chosen.container_args or ()), job_dir]
        mounts += [Mount(d, d) for d in _bucket_dirs(named, storage)]

        name = "-".join(
            part for part in ("cairn", context.job_id, context.trial_id, replica.task_name) if part
        )
        name = f"{name}-{uuid.uuid4().hex[:8]}"
        env_file = context.run_dir / "containers" / f"{replica.task_name}.env"
        write_env_file(env_file, env)
        user = (run_as.uid, run_as.gid) if run_as is not None else (os.getuid(), os.getgid())
        run = ContainerRun(
            name=name,
            image=chosen.image,
            command=chosen.command,
            args=args,
            env_file=env_file,
            workdir=context.work_dir,
            user=user,
            mounts=mounts,
            labels={"io.cairn.job": context.job_id, "io.cairn.replica": replica.task_name},
        )
        log_path, stderr_path = log_paths(context.run_dir, replica.task_name)
        return LaunchSpec(
            name=replica.task_name,
            argv=self.engine.supervisor_argv(run),
            # The engine's own environment is the server's (minus Cairn's settings): the
            # replica's variables reach the container through the env file alone.
            env=user_code_environment(),
            # The server's directory, not the job's: the engine runs as the server's user.
            cwd=context.run_dir,
            log_path=log_path,
            stderr_path=stderr_path,
            exit_path=context.run_dir / "exit" / f"{replica.task_name}.code",
            run_as=None,
            times_path=times_path(log_path),
        )
