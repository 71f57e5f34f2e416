"""The variables of XGBoost's collective that the master and the workers get."""

from __future__ import annotations

import itertools
from pathlib import Path

from cairn.training import cluster_for
from cairn.training.environments import PythonEnvironment
from cairn.training.replica_command import RunContext, replica_env
from cairn.training.run_state import cluster_from_json, cluster_to_json

CUSTOM = {
    "scaleTier": "CUSTOM",
    "workerCount": "2",
    "parameterServerCount": "1",
    "evaluatorCount": "1",
}


def _ports():
    counter = itertools.count(6000)
    return lambda: next(counter)


def test_master_and_workers_are_ranked_members_and_the_others_are_not() -> None:
    cluster = cluster_for(CUSTOM, _ports())
    replica_ports = {r.port for r in cluster.replicas}
    assert cluster.tracker_port is not None and cluster.tracker_port not in replica_ports

    by_name = {r.task_name: cluster.xgboost_env(r) for r in cluster.replicas}
    common = {
        "DMLC_TRACKER_URI": "127.0.0.1",
        "DMLC_TRACKER_PORT": str(cluster.tracker_port),
        "DMLC_NUM_WORKER": "3",
        "DMLC_ROLE": "worker",
    }
    assert by_name["master-replica-0"] == {**common, "DMLC_TASK_ID": "0"}
    assert by_name["worker-replica-0"] == {**common, "DMLC_TASK_ID": "1"}
    assert by_name["worker-replica-1"] == {**common, "DMLC_TASK_ID": "2"}
    assert by_name["ps-replica-0"] == {}
    assert by_name["evaluator-replica-0"] == {}


def test_a_single_replica_is_a_collective_of_one() -> None:
    cluster = cluster_for({"scaleTier": "BASIC"}, _ports())
    (master,) = cluster.replicas
    env = cluster.xgboost_env(master)
    assert env["DMLC_NUM_WORKER"] == "1" and env["DMLC_TASK_ID"] == "0"


def test_the_tracker_port_survives_the_run_record_and_old_records_have_none() -> None:
    cluster = cluster_for(CUSTOM, _ports())
    assert cluster_from_json(cluster_to_json(cluster)) == cluster
    older = cluster_to_json(cluster)
    del older["tracker_port"]  # a record written before the collective existed
    restored = cluster_from_json(older)
    assert restored.tracker_port is None
    assert all(restored.xgboost_env(r) == {} for r in restored.replicas)


def test_replica_env_carries_the_collective_and_the_job_cannot_override_it(
    tmp_path: Path,
) -> None:
    cluster = cluster_for(CUSTOM, _ports())
    context = RunContext(
        job_id="job1",
        training_input=CUSTOM,
        cluster=cluster,
        job_dir=tmp_path / "job1",
        run_dir=tmp_path / "job1",
        extra_env={"DMLC_TASK_ID": "99"},
    )
    environment = PythonEnvironment(tmp_path / "env")
    worker = next(r for r in cluster.replicas if r.task_name == "worker-replica-1")
    env = replica_env(context, worker, environment, base={"PATH": "/usr/bin"})
    assert env["DMLC_TASK_ID"] == "2"
    assert env["DMLC_TRACKER_PORT"] == str(cluster.tracker_port)
    ps = next(r for r in cluster.replicas if r.role == "ps")
    assert "DMLC_TRACKER_PORT" not in replica_env(context, ps, environment, base={})
