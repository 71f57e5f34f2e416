"""What a replica runs: `python -m <pythonModule> <args> --job-dir <dir>` and its environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cairn.domain.errors import invalid_field
from cairn.executors import RunAs, user_code_environment
from cairn.executors.google_clients import google_client_env
from cairn.training.capacity import REPLICA_DEVICES_VARIABLE, replica_devices
from cairn.training.cluster import ClusterSpec, ReplicaSpec
from cairn.training.environments import PythonEnvironment


class LocalPaths(Protocol):
    """What the training engine needs from storage (`cairn.storage.BucketStorage`)."""

    def local_path(self, uri: str) -> Path: ...

    def localize_arg(self, value: str) -> str: ...


@dataclass(frozen=True)
class RunContext:
    """Everything that is the same for every replica of one run (a job, or one trial)."""

    job_id: str
    training_input: Mapping[str, Any]
    cluster: ClusterSpec
    job_dir: Path  # <jobs_root>/<project>/<job_id>
    run_dir: Path  # the job dir, or <job dir>/trials/<trial id> for a tuning trial
    trial_id: str | None = None
    extra_args: Sequence[str] = ()
    # Variables every replica gets besides AI Platform's (e.g. the job's credential file).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    api_url: str | None = None  # the server's own URL, for trainers that call the API

    @property
    def work_dir(self) -> Path:
        """The replicas' working directory: the one part of the run directory they may write."""
        return self.run_dir / "work"

    @property
    def metric_file(self) -> Path:
        """Where cloudml-hypertune writes, per job and trial, so runs never share /tmp."""
        return self.job_dir / "hypertune" / (self.trial_id or "0") / "output.metrics"


def python_module(training_input: Mapping[str, Any]) -> str:
    module = str(training_input.get("pythonModule") or "").strip()
    if not module:
        raise invalid_field(
            "job.training_input.python_module",
            "Set pythonModule to the module that starts training, e.g. trainer.task.",
        )
    return module


def replica_argv(
    context: RunContext, environment: PythonEnvironment, storage: LocalPaths
) -> list[str]:
    """The user command, with gs:// URIs in its arguments mapped to local bucket paths."""
    args = [storage.localize_arg(str(a)) for a in context.training_input.get("args") or []]
    argv = [str(environment.python), "-m", python_module(context.training_input), *args]
    argv += [str(a) for a in context.extra_args]
    if job_dir := context.training_input.get("jobDir"):
        local_job_dir = Path(storage.localize_arg(str(job_dir)))
        local_job_dir.mkdir(parents=True, exist_ok=True)
        argv += ["--job-dir", str(local_job_dir)]
    return argv


def replica_env(
    context: RunContext,
    replica: ReplicaSpec,
    environment: PythonEnvironment,
    base: Mapping[str, str] | None = None,
    *,
    run_as: RunAs | None = None,
) -> dict[str, str]:
    """Cairn's environment plus what AI Platform gives a replica (reference §3.3).

    The job's `extra_env` comes before AI Platform's variables, which it cannot override.
    With `run_as`, HOME is the working directory: the user's own home may not exist.
    """
    env = {**user_code_environment(base), **context.extra_env}
    # Only the GPUs the job queue placed this replica on (training/capacity.py).
    env.update(replica_devices(env.pop(REPLICA_DEVICES_VARIABLE, None), replica.task_name))
    if run_as is not None:
        env = run_as.environment(env, home=context.work_dir)
    env.pop("PYTHONHOME", None)
    env["VIRTUAL_ENV"] = str(environment.root)
    env["PATH"] = os.pathsep.join([str(environment.bin_dir), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"  # so the logs show lines as they are printed
    tf_config = context.cluster.tf_config(replica, context.training_input, context.trial_id)
    env["TF_CONFIG"] = json.dumps(tf_config)
    env.update(context.cluster.xgboost_env(replica))  # XGBoost's collective (cluster.py)
    env["CLOUD_ML_JOB_ID"] = context.job_id
    context.metric_file.parent.mkdir(parents=True, exist_ok=True)
    env["CLOUD_ML_HP_METRIC_FILE"] = str(context.metric_file)
    if context.trial_id is not None:
        env["CLOUD_ML_TRIAL_ID"] = context.trial_id
    else:
        env.pop("CLOUD_ML_TRIAL_ID", None)
    if context.api_url is not None:
        env["CAIRN_API"] = context.api_url
        # Unmodified googleapiclient, google-cloud-storage, gcsfs and gsutil reach Cairn
        # with the job's credential (GOOGLE_APPLICATION_CREDENTIALS, in extra_env).
        env = google_client_env(context.api_url, env, project=context.job_dir.parent.name)
    return env
