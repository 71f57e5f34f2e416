"""The run file: which processes a run started and how it ended, kept in its directory.

It is what lets a restarted server find a job's replicas again (pid plus process
creation time, so a reused pid is never mistaken for the replica), and what tells it
the outcome of a run that ended while nobody was watching. It names the home that started
the run, so a server on a copy of that home never adopts, or ends, the original's replicas,
and the uid the job runs as, so a restarted server keeps that uid the job's. It keeps the
cluster (every replica's port) and each replica's state and restart count, so a restarted
server restarts a crashed worker with the TF_CONFIG it had and never beyond its bound.
It lies in the run directory, which the server owns: user code can read past it but can
never rewrite it (the pids in it are processes the server would signal).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cairn.executors import ReplicaRecord
from cairn.training.cluster import ClusterSpec, ReplicaSpec

RUN_FILE = "run.json"

# A replica's state (Job.cairnReplicas[].state): running, restarting after a crash, ended
# by itself with 0 (SUCCEEDED) or not (FAILED), or ended by Cairn with the job (STOPPED).
RUNNING = "RUNNING"
RESTARTING = "RESTARTING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
STOPPED = "STOPPED"


@dataclass
class ReplicaStatus:
    state: str = RUNNING
    restart_count: int = 0  # restarts after a crash, so far
    exit_code: int | None = None  # how its last process ended (negative: by that signal)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restart_count": self.restart_count,
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplicaStatus:
        code = data.get("exit_code")
        return cls(
            state=str(data.get("state") or RUNNING),
            restart_count=int(data.get("restart_count") or 0),
            exit_code=int(code) if code is not None else None,
        )


def cluster_to_json(cluster: ClusterSpec) -> dict[str, Any]:
    return asdict(cluster)


def cluster_from_json(data: dict[str, Any]) -> ClusterSpec:
    replicas = tuple(ReplicaSpec(**replica) for replica in data["replicas"])
    return ClusterSpec(**{**data, "replicas": replicas})


@dataclass
class RunState:
    primary: str  # task name of the primary replica, e.g. "master-replica-0"
    replicas: list[ReplicaRecord]
    trial_id: str | None = None
    outcome: dict[str, Any] | None = None  # {"state": ..., "error_message": ...} once ended
    home_id: str | None = None  # the identity of the home whose server started the run
    uid: int | None = None  # the job's own uid its replicas run as (None: the server's user)
    # The replicas' ports and roles (None in records of older servers: no restarts then).
    cluster: ClusterSpec | None = None
    status: dict[str, ReplicaStatus] = field(default_factory=dict)  # by task name
    # What a restarted replica must get again after a server restart: a trial's parameters
    # and the job's variables (its credential's path, its GPUs). No secrets: paths only.
    extra_args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "primary": self.primary,
            "replicas": [r.to_json() for r in self.replicas],
            "trial_id": self.trial_id,
            "outcome": self.outcome,
            "home_id": self.home_id,
            "uid": self.uid,
            "cluster": cluster_to_json(self.cluster) if self.cluster is not None else None,
            "status": {name: status.to_json() for name, status in self.status.items()},
            "extra_args": self.extra_args,
            "extra_env": self.extra_env,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        return cls(
            primary=str(data["primary"]),
            replicas=[ReplicaRecord.from_json(r) for r in data.get("replicas", [])],
            trial_id=data.get("trial_id"),
            outcome=data.get("outcome"),
            home_id=data.get("home_id"),
            uid=int(data["uid"]) if data.get("uid") is not None else None,
            cluster=cluster_from_json(data["cluster"]) if data.get("cluster") else None,
            status={
                str(name): ReplicaStatus.from_json(status)
                for name, status in (data.get("status") or {}).items()
            },
            extra_args=[str(arg) for arg in data.get("extra_args") or []],
            extra_env={str(k): str(v) for k, v in (data.get("extra_env") or {}).items()},
        )


def write_run_state(run_dir: Path, state: RunState) -> None:
    path = run_dir / RUN_FILE
    tmp = path.with_name(f".{RUN_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=1))
    os.replace(tmp, path)


def read_run_state(run_dir: Path) -> RunState | None:
    try:
        return RunState.from_json(json.loads((run_dir / RUN_FILE).read_text()))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def clear_run_state(run_dir: Path) -> None:
    (run_dir / RUN_FILE).unlink(missing_ok=True)
