"""Where replicas run: one interface (`Executor`), local processes for now."""

from cairn.executors.base import (
    DEFAULT_GRACE_S,
    Executor,
    LaunchSpec,
    ReplicaLost,
    ReplicaProcess,
    ReplicaRecord,
)
from cairn.executors.local import LocalProcessExecutor
from cairn.executors.process_tree import is_running, terminate_tree

__all__ = [
    "DEFAULT_GRACE_S",
    "Executor",
    "LaunchSpec",
    "LocalProcessExecutor",
    "ReplicaLost",
    "ReplicaProcess",
    "ReplicaRecord",
    "is_running",
    "terminate_tree",
]
