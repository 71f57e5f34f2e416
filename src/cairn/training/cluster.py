"""A training job's cluster: which replicas run, their loopback ports, and their TF_CONFIG.

Every job is a `ClusterSpec`, even a BASIC one (a cluster of one master), so distributed
jobs and single-replica jobs go through the same launch, watch and cancel code.

Besides TF_CONFIG, the master and the workers get the variables of XGBoost's collective in
the DMLC convention (dmlc-submit's, which XGBoost's trackers grew up with): the tracker's
host and port (a port reserved for the job, on the primary's host), the number of members
and the member's rank (master 0, worker i is i + 1). Cairn does not run the tracker: a
trainer that wants the collective starts `xgboost.tracker.RabitTracker` on rank 0 and joins
with `xgboost.collective.CommunicatorContext` (examples/xgboost_distributed shows the few
lines); a trainer that ignores the variables is unaffected.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cairn.domain.errors import ApiError, Code, invalid_field
from cairn.domain.jobs import TIER_REPLICAS

MASTER = "master"
WORKER = "worker"
PS = "ps"
EVALUATOR = "evaluator"

LOOPBACK = "127.0.0.1"

# Probes for a port before giving up: a probe repeats a taken port only rarely, so running
# out means the machine has no free ports, and looping on would hang the request.
_PORT_PROBES_PER_REPLICA = 50


@dataclass(frozen=True)
class ReplicaSpec:
    """One process of the cluster. `role` is the log/task name role: master, worker, ps, evaluator."""

    role: str
    index: int
    port: int | None  # None for evaluators: they are not part of the training cluster

    @property
    def task_name(self) -> str:
        """The name AI Platform gives the replica in logs, e.g. `master-replica-0`."""
        return f"{self.role}-replica-{self.index}"

    @property
    def address(self) -> str | None:
        return f"{LOOPBACK}:{self.port}" if self.port is not None else None


@dataclass(frozen=True)
class ClusterSpec:
    """The replicas of one job (or one tuning trial) and what the primary is called."""

    replicas: tuple[ReplicaSpec, ...]
    primary_type: str  # "chief" (TF 2 runtimes) or "master" in TF_CONFIG
    # Where the primary's XGBoost tracker listens (None: no collective, e.g. a record
    # written before there was one).
    tracker_port: int | None = None

    @property
    def primary(self) -> ReplicaSpec:
        return next(r for r in self.replicas if r.role == MASTER)

    def task_type(self, replica: ReplicaSpec) -> str:
        return self.primary_type if replica.role == MASTER else replica.role

    def tf_cluster(self) -> dict[str, list[str]]:
        """TF_CONFIG's `cluster`: task type -> addresses; never lists evaluators."""
        cluster: dict[str, list[str]] = {}
        for replica in self.replicas:
            if replica.role == EVALUATOR or replica.address is None:
                continue
            cluster.setdefault(self.task_type(replica), []).append(replica.address)
        return cluster

    def collective_members(self) -> list[ReplicaSpec]:
        """The replicas in XGBoost's collective, in rank order: the master, then the workers."""
        return [r for r in self.replicas if r.role == MASTER] + [
            r for r in self.replicas if r.role == WORKER
        ]

    def xgboost_env(self, replica: ReplicaSpec) -> dict[str, str]:
        """The DMLC variables of `replica`'s membership in XGBoost's collective.

        Empty for parameter servers and evaluators (they are not members) and for a cluster
        without a tracker port. DMLC_TASK_ID is the rank as a decimal string; a tracker
        started with `sortby="task"` orders members by it as text, so the master (0) is
        always rank 0, while the collective's own `get_rank()` is what shards data.
        """
        members = self.collective_members()
        if self.tracker_port is None or replica not in members:
            return {}
        return {
            "DMLC_TRACKER_URI": LOOPBACK,  # the primary's host
            "DMLC_TRACKER_PORT": str(self.tracker_port),
            "DMLC_NUM_WORKER": str(len(members)),
            "DMLC_TASK_ID": str(members.index(replica)),
            "DMLC_ROLE": "worker",  # every member is a worker in the collective's terms
        }

    def tf_config(
        self,
        replica: ReplicaSpec,
        training_input: Mapping[str, Any],
        trial_id: str | None = None,
    ) -> dict[str, Any]:
        """TF_CONFIG as a replica on AI Platform sees it (reference §3.3, cloud shape)."""
        task: dict[str, Any] = {"type": self.task_type(replica), "index": replica.index}
        if trial_id is not None:
            task["trial"] = trial_id
        return {
            "cluster": self.tf_cluster(),
            "task": task,
            "job": dict(training_input),
            "environment": "cloud",
        }


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def primary_type(training_input: Mapping[str, Any]) -> str:
    """`chief` for runtime versions 2.1 and later (or unset), `master` for older ones."""
    if training_input.get("useChiefInTfConfig"):
        return "chief"
    if (training_input.get("masterConfig") or {}).get("imageUri"):
        return "master"  # AI Platform's custom containers (reference §3.3)
    version = str(training_input.get("runtimeVersion") or "").strip()
    if not version:
        return "chief"
    try:
        parts = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return "chief"
    return "chief" if parts >= (2, 1) else "master"


def _count(training_input: Mapping[str, Any], key: str) -> int:
    raw = training_input.get(key)
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise invalid_field(
            f"job.training_input.{key}", f"'{raw}' is not a whole number."
        ) from None
    if value < 0:
        raise invalid_field(f"job.training_input.{key}", "Counts cannot be negative.")
    return value


def replica_counts(training_input: Mapping[str, Any]) -> tuple[int, int, int]:
    """(workers, parameter servers, evaluators) the scale tier asks for."""
    tier = str(training_input.get("scaleTier") or "BASIC")
    if tier == "CUSTOM":
        return (
            _count(training_input, "workerCount"),
            _count(training_input, "parameterServerCount"),
            _count(training_input, "evaluatorCount"),
        )
    if tier == "BASIC_TPU":
        raise ApiError(
            Code.UNIMPLEMENTED,
            "scaleTier BASIC_TPU is not built in Cairn (there are no Cloud TPUs here); "
            "use BASIC, BASIC_GPU or CUSTOM.",
        )
    if tier not in TIER_REPLICAS:
        raise invalid_field(
            "job.training_input.scale_tier",
            f"Unknown scale tier '{tier}'; use BASIC, BASIC_GPU, STANDARD_1, PREMIUM_1 or CUSTOM.",
        )
    workers, ps = TIER_REPLICAS[tier]
    return workers, ps, 0


def cluster_for(
    training_input: Mapping[str, Any], port_source: Callable[[], int] = free_port
) -> ClusterSpec:
    """The cluster a training input describes, with a fresh loopback port per member."""
    workers, ps, evaluators = replica_counts(training_input)
    taken: set[int] = set()

    def distinct_port() -> int:
        # Ports come from closed probe sockets, so the OS may hand one out twice.
        for _ in range(_PORT_PROBES_PER_REPLICA):
            port = port_source()
            if port not in taken:
                taken.add(port)
                return port
        raise ApiError(
            Code.RESOURCE_EXHAUSTED,
            f"No free loopback port was found for replica {len(taken) + 1} of the job; "
            "try again when fewer jobs run.",
        )

    replicas = [ReplicaSpec(MASTER, 0, distinct_port())]
    replicas += [ReplicaSpec(WORKER, i, distinct_port()) for i in range(workers)]
    replicas += [ReplicaSpec(PS, i, distinct_port()) for i in range(ps)]
    replicas += [ReplicaSpec(EVALUATOR, i, None) for i in range(evaluators)]
    # Reserved for every job, like the replicas' ports: Cairn cannot know whether the
    # trainer uses XGBoost, and a probe costs microseconds.
    tracker_port = distinct_port()
    return ClusterSpec(tuple(replicas), primary_type(training_input), tracker_port)
