"""The training engine: packages, environments, clusters and TF_CONFIG, the job runner."""

from cairn.training.cluster import ClusterSpec, ReplicaSpec, cluster_for, primary_type
from cairn.training.environments import EnvironmentCache, PythonEnvironment
from cairn.training.runner import SHUTDOWN_MESSAGE, RunOutcome, TrainingRunner

__all__ = [
    "SHUTDOWN_MESSAGE",
    "ClusterSpec",
    "EnvironmentCache",
    "PythonEnvironment",
    "ReplicaSpec",
    "RunOutcome",
    "TrainingRunner",
    "cluster_for",
    "primary_type",
]
