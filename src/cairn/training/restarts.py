"""Which crashed replicas are restarted, how often, and what the job's log says about it.

AI Platform restarts a worker that exits with a non-zero code, with the same hostname, up
to five times, then ends the job. Cairn does the same for workers and evaluators, on the
same loopback port (same TF_CONFIG), so the cluster takes the replica back: TensorFlow's
ParameterServerStrategy coordinator reschedules a lost worker's functions and waits for
it to come back at its address; a sidecar evaluator just reads the newest checkpoint.

The primary is never restarted (its exit ends the job, as on AI Platform), and neither are
parameter servers: a restarted one comes back without the variables it held, and
TensorFlow's coordinator fails the training for it anyway, so restarting it would only
hide the cause behind a second error.
"""

from __future__ import annotations

import signal
from pathlib import Path

from cairn.training.cluster import EVALUATOR, WORKER
from cairn.training.failure import replica_failure_message

# AI Platform's bound: "up to five restarts per worker".
DEFAULT_MAX_RESTARTS = 5
# Seconds between a crash and the restart: long enough that a replica crashing at once
# does not spin, short against any training.
DEFAULT_RESTART_DELAY_S = 1.0
RESTARTABLE_ROLES = frozenset({WORKER, EVALUATOR})


def role_of(task_name: str) -> str:
    """`worker-replica-1` -> `worker`."""
    return task_name.rpartition("-replica-")[0]


def may_restart(task_name: str, primary: str, restarts_so_far: int, max_restarts: int) -> bool:
    return (
        task_name != primary
        and role_of(task_name) in RESTARTABLE_ROLES
        and restarts_so_far < max_restarts
    )


def how_it_ended(code: int | None) -> str:
    if code is None:
        return "was lost (its process ended without recording an exit status)"
    if code < 0:
        try:
            return f"was ended by {signal.Signals(-code).name}"
        except ValueError:
            return f"was ended by signal {-code}"
    return f"exited with status {code}"


def restart_line(task_name: str, code: int | None, attempt: int, max_restarts: int) -> str:
    """The service log's line about a restart, e.g. `Replica worker-replica-1 exited with
    status 1; restarting it (restart 1 of 5).`"""
    return (
        f"Replica {task_name} {how_it_ended(code)}; "
        f"restarting it (restart {attempt} of {max_restarts})."
    )


def final_failure_message(
    task_name: str, code: int | None, stderr_path: str | Path, restarts: int, lost: str | None
) -> str:
    """The job's error message when a replica failed and is not restarted (again)."""
    if lost is not None:
        message = lost
        if restarts:
            message += f" It had been restarted {restarts} times, the most Cairn allows."
        return message
    assert code is not None
    return replica_failure_message(task_name, code, stderr_path, restarts=restarts)
