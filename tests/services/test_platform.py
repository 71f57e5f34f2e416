"""`build_platform` hands every limit and the allowed local roots to the services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.domain.errors import ApiError, Code
from cairn.services.platform import Platform, build_platform
from cairn.serving import ServingManager
from cairn.storage import BucketStorage
from cairn.store import MetadataStore
from cairn.training import TrainingRunner

PROJECT = "p"
TRAINING = {"packageUris": ["gs://bkt/t.tar.gz"], "pythonModule": "trainer.task", "region": "r"}


@pytest.fixture
def make_platform(tmp_path: Path) -> Iterator[Callable[..., Platform]]:
    closers: list[Callable[[], None]] = []

    def make(**limits: Any) -> Platform:
        home = tmp_path / f"home{len(closers)}"
        store = MetadataStore(f"sqlite:///{home}.db")
        storage = BucketStorage(home / "storage")
        serving = ServingManager(home / "serving")
        runner = TrainingRunner(home / "jobs", home / "envs", storage)
        closers.extend([store.close, serving.shutdown])
        platform = build_platform(
            store, storage, runner, serving, models_root=home / "models", **limits
        )
        closers.append(platform.stop)
        return platform

    yield make
    for close in reversed(closers):
        close()


def refused_field(call: Callable[..., Any], *args: Any) -> str:
    with pytest.raises(ApiError) as raised:
        call(*args)
    assert raised.value.code is Code.INVALID_ARGUMENT, raised.value
    return raised.value.field_violations[0].field


def test_the_replica_limit_reaches_the_job_service(make_platform: Callable[..., Platform]) -> None:
    platform = make_platform(max_replicas=2)
    custom = {"scaleTier": "CUSTOM", "masterType": "m", "workerType": "w", "workerCount": "2"}
    body = {"jobId": "j", "trainingInput": {**TRAINING, **custom}}
    assert refused_field(platform.jobs.create, PROJECT, body) == "job.training_input.worker_count"


def test_the_node_limit_reaches_the_version_service(
    make_platform: Callable[..., Platform],
) -> None:
    """CAIRN_MAX_NODES_PER_VERSION used to be dropped on the way."""
    platform = make_platform(max_nodes_per_version=1)
    platform.models.create(PROJECT, {"name": "m"})
    body = {"name": "v", "deploymentUri": "gs://bkt/m", "manualScaling": {"nodes": 2}}
    assert refused_field(platform.versions.create, PROJECT, "m", body) == (
        "version.manual_scaling.nodes"
    )


def test_local_roots_open_server_paths_to_requests(
    make_platform: Callable[..., Platform], tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    closed = make_platform()
    opened = make_platform(local_roots=[shared])
    for platform in (closed, opened):
        platform.models.create(PROJECT, {"name": "m"})
    body = {"name": "v", "deploymentUri": str(shared / "missing")}
    with pytest.raises(ApiError) as refused:
        closed.versions.create(PROJECT, "m", body)
    assert "CAIRN_LOCAL_ROOTS" in refused.value.message
    # Under the root the path is allowed; this one then fails for being absent.
    with pytest.raises(ApiError) as absent:
        opened.versions.create(PROJECT, "m", body)
    assert "is not a directory" in absent.value.message
    job = {"jobId": "j", "trainingInput": {**TRAINING, "jobDir": str(shared / "out")}}
    assert opened.jobs.create(PROJECT, job)["jobId"] == "j"
    assert refused_field(closed.jobs.create, PROJECT, job) == "job.training_input.job_dir"
