"""Clusters from scale tiers, and the TF_CONFIG each replica gets."""

from __future__ import annotations

import itertools

import pytest

from cairn.domain.errors import ApiError, Code
from cairn.training import cluster_for, primary_type


def _ports():
    counter = itertools.count(5000)
    return lambda: next(counter)


@pytest.mark.parametrize(
    ("tier", "workers", "ps"),
    [
        (None, 0, 0),
        ("BASIC", 0, 0),
        ("BASIC_GPU", 0, 0),
        ("STANDARD_1", 4, 3),
        ("PREMIUM_1", 19, 11),
    ],
)
def test_predefined_tiers_have_their_documented_shapes(tier, workers, ps) -> None:
    cluster = cluster_for({"scaleTier": tier} if tier else {}, _ports())
    roles = [r.role for r in cluster.replicas]
    assert roles.count("master") == 1
    assert roles.count("worker") == workers
    assert roles.count("ps") == ps


def test_custom_counts_may_be_strings_and_evaluators_have_no_port() -> None:
    spec = {
        "scaleTier": "CUSTOM",
        "workerCount": "2",
        "parameterServerCount": 1,
        "evaluatorCount": "1",
    }
    cluster = cluster_for(spec, _ports())
    assert [r.task_name for r in cluster.replicas] == [
        "master-replica-0",
        "worker-replica-0",
        "worker-replica-1",
        "ps-replica-0",
        "evaluator-replica-0",
    ]
    evaluator = cluster.replicas[-1]
    assert evaluator.port is None
    assert cluster.tf_cluster() == {
        "chief": ["127.0.0.1:5000"],
        "worker": ["127.0.0.1:5001", "127.0.0.1:5002"],
        "ps": ["127.0.0.1:5003"],
    }
    assert cluster.tf_config(evaluator, spec)["task"] == {"type": "evaluator", "index": 0}


def test_ports_handed_out_twice_are_skipped() -> None:
    ports = iter([7000, 7000, 7001, 7001, 7002, 7003])
    spec = {"scaleTier": "CUSTOM", "workerCount": "2"}
    cluster = cluster_for(spec, lambda: next(ports))
    assert [r.port for r in cluster.replicas] == [7000, 7001, 7002]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, "chief"),
        ({"runtimeVersion": "2.1"}, "chief"),
        ({"runtimeVersion": "2.11"}, "chief"),
        ({"runtimeVersion": "2.0"}, "master"),
        ({"runtimeVersion": "1.15"}, "master"),
        ({"runtimeVersion": "1.15", "useChiefInTfConfig": True}, "chief"),
    ],
)
def test_the_primary_is_chief_from_runtime_2_1(spec, expected) -> None:
    assert primary_type(spec) == expected


def test_bad_tiers_and_counts_are_refused() -> None:
    with pytest.raises(ApiError) as tpu:
        cluster_for({"scaleTier": "BASIC_TPU"})
    assert tpu.value.code is Code.UNIMPLEMENTED
    with pytest.raises(ApiError) as count:
        cluster_for({"scaleTier": "CUSTOM", "workerCount": "many"})
    assert count.value.code is Code.INVALID_ARGUMENT
    with pytest.raises(ApiError):
        cluster_for({"scaleTier": "MEGA"})


def test_port_search_gives_up_instead_of_spinning() -> None:
    """A machine out of ports used to hang the create request forever in this loop."""
    probes = itertools.count()

    def always_the_same_port() -> int:
        assert next(probes) < 10_000, "the port search does not give up"
        return 5000

    spec = {"scaleTier": "CUSTOM", "workerCount": "3"}
    with pytest.raises(ApiError) as raised:
        cluster_for(spec, always_the_same_port)
    assert raised.value.code is Code.RESOURCE_EXHAUSTED
    assert "free loopback port" in raised.value.message
