"""Where replicas run: one small interface, so a Ray executor can sit beside local processes.

An executor launches a command as a replica and hands back a `ReplicaProcess`. Every
replica is described by a `ReplicaRecord` that is plain JSON, so the training engine can
write it to disk and, after a server restart, ask the executor to adopt the replica again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cairn.executors.run_as import RunAs

# Seconds a replica gets between SIGTERM and SIGKILL when it is stopped.
DEFAULT_GRACE_S = 5.0
# The executor that runs replicas as processes of this machine (executors/local.py).
LOCAL = "local"


@dataclass(frozen=True)
class LaunchSpec:
    """What to run for one replica and where its output and exit status go."""

    name: str  # e.g. "master-replica-0"; names the log files
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    log_path: Path  # stdout and stderr, interleaved as they arrive
    stderr_path: Path  # stderr alone, for the error message of a failed replica
    exit_path: Path  # the wrapper writes the user command's exit code here
    # Who the replica runs as (None: the executor's default); it owns `cwd`, the exit
    # file's directory and the two log files, and nobody else may touch them.
    run_as: RunAs | None = None
    # Where the arrival time of each write to `log_path` is recorded (None: nowhere), so
    # the logs of a job's replicas can be read in time order (`cairn.training.logs`).
    times_path: Path | None = None


@dataclass(frozen=True)
class ReplicaRecord:
    """A launched replica as JSON: enough for the executor that launched it to find it
    again after a restart.

    `handle` belongs to that executor (`executor` names which): a local process's pid and
    creation time, a Ray actor's name. The engines above store and hand back records whole
    and never look inside, so they assume no pids. The paths lie under the server's home,
    which an executor running replicas on other machines must share with them.
    """

    name: str
    log_path: str
    stderr_path: str
    exit_path: str
    executor: str = LOCAL
    handle: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReplicaRecord:
        handle = data.get("handle")
        if handle is None and "pid" in data:
            # Written before handles: always a local process.
            handle = {"pid": data["pid"], "create_time": data["create_time"]}
        return cls(
            name=str(data["name"]),
            log_path=str(data["log_path"]),
            stderr_path=str(data["stderr_path"]),
            exit_path=str(data["exit_path"]),
            executor=str(data.get("executor") or LOCAL),
            handle=dict(handle or {}),
        )


class ReplicaLost(Exception):
    """The replica's process is gone and left no exit status behind."""


class ReplicaProcess(ABC):
    """A running (or finished) replica, launched or adopted by an executor."""

    record: ReplicaRecord

    @abstractmethod
    def poll(self) -> int | None:
        """The exit code once the replica has ended, else None.

        Negative codes mean "killed by that signal". Raises `ReplicaLost` when the process
        vanished without a recorded exit status (e.g. it was SIGKILLed with its wrapper).
        """

    @abstractmethod
    def terminate(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """End the replica's whole process tree: SIGTERM, then SIGKILL after `grace_s`."""

    @abstractmethod
    def is_alive(self) -> bool:
        """Whether the replica still runs: its wrapper, and so the user command, is alive.

        Leftover grandchildren of an ended replica do not count; `terminate` ends them.
        """


class Executor(ABC):
    """Launches replicas and re-adopts them after a restart (`server.py` chooses one)."""

    kind: str  # what it writes as `ReplicaRecord.executor`

    @abstractmethod
    def launch(self, spec: LaunchSpec) -> ReplicaProcess: ...

    @abstractmethod
    def adopt(self, record: ReplicaRecord) -> ReplicaProcess | None:
        """The replica behind `record` if it still runs or left an exit status, else None."""
