"""AI Platform's rules for custom containers: which image, command and args each role runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.training.packages import local_buckets

from cairn.domain.errors import ApiError, Code
from cairn.training.cluster import cluster_for
from cairn.training.containers import (
    ContainerReplicas,
    check_container_fields,
    container_args,
    is_container_job,
    replica_container,
)

IMAGE = "gcr.io/project/trainer:1"


def _spec(**fields: Any) -> dict[str, Any]:
    return {"region": "us-central1", "masterConfig": {"imageUri": IMAGE}, **fields}


def _field_of(error: ApiError) -> str:
    return error.field_violations[0].field


def test_roles_without_an_image_run_the_masters_with_its_command() -> None:
    spec = _spec(
        masterConfig={"imageUri": IMAGE, "containerCommand": ["python", "-m", "t"]},
        parameterServerConfig={"imageUri": "gcr.io/project/ps:2"},
    )
    assert is_container_job(spec)
    assert replica_container(spec, "worker").image == IMAGE
    assert replica_container(spec, "worker").command == ("python", "-m", "t")
    ps = replica_container(spec, "ps")
    assert (ps.image, ps.command, ps.container_args) == ("gcr.io/project/ps:2", (), None)
    assert not is_container_job({"packageUris": ["gs://b/p.tar.gz"]})


def test_containers_call_the_primary_master_unless_use_chief_in_tf_config() -> None:
    assert cluster_for(_spec()).primary_type == "master"
    assert cluster_for(_spec(useChiefInTfConfig=True)).primary_type == "chief"


def test_args_then_job_dir_follow_the_entrypoint_with_local_buckets_localized(
    tmp_path: Path,
) -> None:
    storage = local_buckets(tmp_path / "storage")
    spec = _spec(args=["--data=gs://data/train.csv", "--steps", "5"], jobDir="gs://out/run")
    args = container_args(spec, "master", storage, ["--lr=0.1"])
    root = storage.root
    assert args == [
        f"--data={root / 'data' / 'train.csv'}",
        "--steps",
        "5",
        "--job-dir",
        str(root / "out" / "run"),
        "--lr=0.1",
    ]


def test_container_args_replace_the_jobs_args(tmp_path: Path) -> None:
    storage = local_buckets(tmp_path / "storage")
    spec = _spec(masterConfig={"imageUri": IMAGE, "containerArgs": ["--a", "gs://bkt/x"]})
    assert container_args(spec, "master", storage) == ["--a", str(storage.root / "bkt" / "x")]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (_spec(args=["--x"], masterConfig={"imageUri": IMAGE, "containerArgs": ["--y"]}), "args"),
        (_spec(masterConfig={"imageUri": "--privileged"}), "master_config.image_uri"),
        (_spec(masterConfig={"imageUri": "bad image"}), "master_config.image_uri"),
        (
            {"packageUris": ["gs://b/p"], "workerConfig": {"imageUri": IMAGE}},
            "worker_config.image_uri",
        ),
        (
            {"packageUris": ["gs://b/p"], "masterConfig": {"containerCommand": ["x"]}},
            "master_config.container_command",
        ),
        (
            _spec(masterConfig={"imageUri": IMAGE, "containerCommand": [""]}),
            "master_config.container_command",
        ),
    ],
)
def test_bad_container_fields_are_refused_naming_the_field(
    spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiError) as refused:
        check_container_fields(spec)
    assert refused.value.code is Code.INVALID_ARGUMENT
    assert _field_of(refused.value) == f"job.training_input.{field}"


def test_no_engine_is_a_failed_precondition_naming_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "podman")
    replicas = ContainerReplicas(missing)
    with pytest.raises(ApiError) as refused:
        replicas.check(_spec())
    assert refused.value.code is Code.FAILED_PRECONDITION
    assert missing in refused.value.message
    replicas.check({"packageUris": ["gs://b/p"]})  # package jobs need no engine
