"""`VersionService.launch_spec`: how another process (batch prediction) loads a READY version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
from sklearn.linear_model import LogisticRegression

from cairn.domain.errors import ApiError, Code
from cairn.domain.names import VersionName
from cairn.services.platform import Platform, build_platform
from cairn.serving import ServingManager
from cairn.storage import BucketStorage
from cairn.store import MetadataStore
from cairn.training import TrainingRunner

pytestmark = pytest.mark.slow


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    home = tmp_path / "home"
    store = MetadataStore(f"sqlite:///{tmp_path}/home.db")
    storage = BucketStorage(home / "storage")
    serving = ServingManager(home / "serving")
    runner = TrainingRunner(home / "jobs", home / "envs", storage)
    built = build_platform(
        store, storage, runner, serving, models_root=home / "models", local_roots=[tmp_path]
    )
    yield built
    built.stop()
    serving.shutdown()
    store.close()


def test_a_ready_version_tells_where_its_model_is(platform: Platform, tmp_path: Path) -> None:
    source = tmp_path / "model"
    source.mkdir()
    joblib.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), source / "model.joblib")
    platform.models.create("p", {"name": "m"})
    platform.versions.create("p", "m", {"name": "v", "deploymentUri": str(source)})
    pending = platform.versions.loading(VersionName("p", "m", "v"))
    assert pending is not None
    pending.result(timeout=120)

    spec = platform.versions.launch_spec("p", "m", "v")

    assert spec.framework == "SCIKIT_LEARN"
    assert spec.python is None and spec.prediction_class is None
    # The deployed copy, not the user's directory: the user may change or delete theirs.
    assert spec.model_dir != source
    assert (spec.model_dir / "model.joblib").is_file()


def test_a_version_that_is_not_ready_is_refused(platform: Platform, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.joblib").write_bytes(b"not a pickle")
    platform.models.create("p", {"name": "m"})
    platform.versions.create("p", "m", {"name": "v", "deploymentUri": str(broken)})
    pending = platform.versions.loading(VersionName("p", "m", "v"))
    assert pending is not None
    pending.result(timeout=120)
    assert platform.versions.get("p", "m", "v")["state"] == "FAILED"

    with pytest.raises(ApiError) as refused:
        platform.versions.launch_spec("p", "m", "v")
    assert refused.value.code is Code.FAILED_PRECONDITION
    assert "FAILED" in refused.value.message
    with pytest.raises(ApiError) as missing:
        platform.versions.launch_spec("p", "m", "nope")
    assert missing.value.code is Code.NOT_FOUND
