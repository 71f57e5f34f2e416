"""The run file: which processes a run started and how it ended, kept in its directory.

It is what lets a restarted server find a job's replicas again (pid plus process
creation time, so a reused pid is never mistaken for the replica), and what tells it
the outcome of a run that ended while nobody was watching. It names the home that started
the run, so a server on a copy of that home never adopts, or ends, the original's replicas,
and the uid the job runs as, so a restarted server keeps that uid the job's.
It lies in the run directory, which the server owns: user code can read past it but can
never rewrite it (the pids in it are processes the server would signal).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.executors import ReplicaRecord

RUN_FILE = "run.json"


@dataclass
class RunState:
    primary: str  # task name of the primary replica, e.g. "master-replica-0"
    replicas: list[ReplicaRecord]
    trial_id: str | None = None
    outcome: dict[str, Any] | None = None  # {"state": ..., "error_message": ...} once ended
    home_id: str | None = None  # the identity of the home whose server started the run
    uid: int | None = None  # the job's own uid its replicas run as (None: the server's user)

    def to_json(self) -> dict[str, Any]:
        return {
            "primary": self.primary,
            "replicas": [r.to_json() for r in self.replicas],
            "trial_id": self.trial_id,
            "outcome": self.outcome,
            "home_id": self.home_id,
            "uid": self.uid,
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
        )


def write_run_state(run_dir: Path, state: RunState) -> None:
    path = run_dir / RUN_FILE
    tmp = path.with_name(f".{RUN_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=1))
    os.replace(tmp, path)


def read_run_state(run_dir: Path) -> RunState | None:
    try:
        return RunState.from_json(json.loads((run_dir / RUN_FILE).read_text()))
    except (FileNotFoundError, ValueError, KeyError):
        return None


def clear_run_state(run_dir: Path) -> None:
    (run_dir / RUN_FILE).unlink(missing_ok=True)
