"""Where replicas run: one interface (`Executor`), local processes for now."""

from cairn.executors.base import (
    DEFAULT_GRACE_S,
    LOCAL,
    Executor,
    LaunchSpec,
    ReplicaLost,
    ReplicaProcess,
    ReplicaRecord,
)
from cairn.executors.identities import DEFAULT_UID_RANGE, UidAllocator
from cairn.executors.local import LocalProcessExecutor
from cairn.executors.process_tree import is_running, terminate_tree
from cairn.executors.run_as import (
    DEFAULT_RUNNER_USER,
    RunAs,
    RunAsError,
    ensure_user,
    user_code_environment,
)

# The executors `CAIRN_EXECUTOR` may name (a Ray executor is the next one: issue 12).
EXECUTORS: dict[str, type[Executor]] = {LOCAL: LocalProcessExecutor}


def make_executor(kind: str) -> Executor:
    """The executor `server.py` hands every engine (training, batch prediction)."""
    return EXECUTORS[kind]()


__all__ = [
    "DEFAULT_GRACE_S",
    "EXECUTORS",
    "LOCAL",
    "make_executor",
    "DEFAULT_RUNNER_USER",
    "DEFAULT_UID_RANGE",
    "Executor",
    "LaunchSpec",
    "LocalProcessExecutor",
    "ReplicaLost",
    "ReplicaProcess",
    "ReplicaRecord",
    "RunAs",
    "RunAsError",
    "ensure_user",
    "is_running",
    "UidAllocator",
    "terminate_tree",
    "user_code_environment",
]
