"""`local train`: run a trainer from source the way `gcloud ai-platform local train` does.

No server, no install: the package's parent directory is the working directory, so
`python -m <module>` imports the package straight from source. TF_CONFIG follows the
local shape of reference §3.3 ("job" holds the module and args, "task"/"cluster" are
empty unless distributed). With `distributed`, parameter servers, workers and evaluators
run as real processes on localhost ports from `start_port`, and the primary runs last;
the exit code is the primary's and every other process tree is ended when it finishes.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.executors import terminate_tree

_GRACE_S = 5.0


@dataclass(frozen=True)
class LocalTask:
    """One process of a local run: its TF_CONFIG task type and index."""

    type: str
    index: int


def installed_tensorflow_major() -> int | None:
    """TensorFlow's major version in this interpreter, read without importing it (slow)."""
    for dist in ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly"):
        try:
            return int(importlib.metadata.version(dist).split(".")[0])
        except (importlib.metadata.PackageNotFoundError, ValueError):
            continue
    return None


def local_primary_type() -> str:
    """gcloud's rule: TensorFlow 1.x names the primary `master`, anything else `chief`."""
    return "master" if installed_tensorflow_major() == 1 else "chief"


@dataclass(frozen=True)
class LocalTrainPlan:
    module: str
    args: tuple[str, ...]  # user args, `--job-dir` appended when given
    workdir: Path
    primary_type: str
    ps_count: int = 0
    worker_count: int = 0
    evaluator_count: int = 0
    start_port: int = 27182
    distributed: bool = False
    # The interpreter: a runtime environment's (--runtime-version), else this one.
    python: str = sys.executable

    def cluster(self) -> dict[str, list[str]]:
        if not self.distributed:
            return {}
        ports = iter(
            range(self.start_port, self.start_port + 1 + self.ps_count + self.worker_count)
        )
        cluster = {self.primary_type: [f"localhost:{next(ports)}"]}
        if self.ps_count:
            cluster["ps"] = [f"localhost:{next(ports)}" for _ in range(self.ps_count)]
        if self.worker_count:
            cluster["worker"] = [f"localhost:{next(ports)}" for _ in range(self.worker_count)]
        return cluster

    def tasks(self) -> list[LocalTask]:
        """Every process, in launch order: ps, workers, evaluators, then the primary."""
        if not self.distributed:
            return [LocalTask(self.primary_type, 0)]
        return [
            *(LocalTask("ps", i) for i in range(self.ps_count)),
            *(LocalTask("worker", i) for i in range(self.worker_count)),
            *(LocalTask("evaluator", i) for i in range(self.evaluator_count)),
            LocalTask(self.primary_type, 0),
        ]

    def tf_config(self, task: LocalTask) -> dict[str, Any]:
        return {
            "job": {"job_name": self.module, "args": list(self.args)},
            "task": {"type": task.type, "index": task.index} if self.distributed else {},
            "cluster": self.cluster(),
            "environment": "cloud",
        }

    def argv(self) -> list[str]:
        return [self.python, "-m", self.module, *self.args]

    def env(self, task: LocalTask, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["TF_CONFIG"] = json.dumps(self.tf_config(task))
        return env


def plan_local_train(
    module: str,
    package_path: Path,
    user_args: Sequence[str],
    job_dir: str | None,
    *,
    distributed: bool = False,
    ps_count: int = 2,
    worker_count: int = 2,
    evaluator_count: int = 0,
    start_port: int = 27182,
    python: str | None = None,
) -> LocalTrainPlan:
    args = [*user_args, *(["--job-dir", job_dir] if job_dir else [])]
    return LocalTrainPlan(
        module=module,
        args=tuple(args),
        workdir=package_path.resolve().parent,
        primary_type=local_primary_type(),
        ps_count=ps_count if distributed else 0,
        worker_count=worker_count if distributed else 0,
        evaluator_count=evaluator_count if distributed else 0,
        start_port=start_port,
        distributed=distributed,
        python=python or sys.executable,
    )


def run_local_train(plan: LocalTrainPlan) -> int:
    """Run every process of the plan in the foreground terminal; return the primary's code."""
    others: list[subprocess.Popen[bytes]] = []
    primary: subprocess.Popen[bytes] | None = None
    try:
        for task in plan.tasks():
            process = subprocess.Popen(
                plan.argv(), cwd=plan.workdir, env=plan.env(task), start_new_session=True
            )
            if task.type == plan.primary_type:
                primary = process
            else:
                others.append(process)
        assert primary is not None
        code = primary.wait()
    except KeyboardInterrupt:
        code = 130
    finally:
        for process in [*others, *([primary] if primary is not None else [])]:
            if process.poll() is None:
                terminate_tree(process.pid, grace_s=_GRACE_S)
            process.poll()
    return code if code >= 0 else 128 - code
