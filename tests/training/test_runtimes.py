"""Runtime versions: which values exist, what each runtime installs, how a trainer's pins are met.

Fast: nothing here builds a runtime environment (tests/training/test_runtime_environments.py,
marked `runtimes`, does). Version choices are checked against the package index's real
metadata (`pip index versions`, a second or two each).
"""

from __future__ import annotations

from importlib import metadata

import pytest

from cairn.domain.errors import ApiError
from cairn.domain.jobs import Job, validate_new_job
from cairn.domain.runtimes import RUNTIMES, check_runtime
from cairn.training.runtimes import (
    WheelIndex,
    nearest_with_wheel,
    plan_layer,
    plan_pins,
)


def _violation(error: ApiError) -> tuple[str, str]:
    [violation] = error.field_violations
    return violation.field, violation.description


def test_every_runtime_ai_platform_had_is_known() -> None:
    assert list(RUNTIMES) == ["1.15", *(f"2.{minor}" for minor in range(1, 12))]
    for version in RUNTIMES:
        runtime = check_runtime(version, "3.7", field_prefix="job.training_input")
        assert runtime is not None and runtime.version == version
    assert check_runtime(None, None, field_prefix="job.training_input") is None
    # The joblib scikit-learn vendored until 0.23: runtimes 1.15, 2.1 and 2.2.
    assert [r.version for r in RUNTIMES.values() if r.has_sklearn_externals_joblib] == [
        "1.15",
        "2.1",
        "2.2",
    ]


@pytest.mark.parametrize("unknown", ["2.12", "2.0", "1.14", "3.0", "latest", "2.11.0"])
def test_a_runtime_ai_platform_never_had_is_refused_with_the_known_ones(unknown: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_runtime(unknown, None, field_prefix="job.training_input")
    field, description = _violation(caught.value)
    assert field == "job.training_input.runtime_version"
    assert repr(unknown) in description
    assert "1.15, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 2.10, 2.11" in description


def test_python_versions_follow_ai_platform() -> None:
    with pytest.raises(ApiError) as caught:
        check_runtime("2.11", "3.11", field_prefix="version")
    assert _violation(caught.value)[0] == "version.python_version"
    assert "2.7, 3.5, 3.7" in _violation(caught.value)[1]
    with pytest.raises(ApiError) as caught:
        check_runtime("2.11", "2.7", field_prefix="version")
    assert "Runtime version 2.11 had Python 3.7, not 2.7" in _violation(caught.value)[1]
    # 1.15 had Python 2.7, but Python 2 code cannot run here: said at create, not later.
    with pytest.raises(ApiError) as caught:
        check_runtime("1.15", "2.7", field_prefix="version")
    assert "cannot run on Cairn" in _violation(caught.value)[1]


def test_job_creation_checks_the_runtime() -> None:
    body = {
        "jobId": "j",
        "trainingInput": {
            "packageUris": ["gs://b/trainer-0.1.tar.gz"],
            "pythonModule": "trainer.task",
            "region": "us-central1",
            "runtimeVersion": "2.12",
        },
    }
    with pytest.raises(ApiError) as caught:
        validate_new_job(Job.parse(body, "job"))
    assert _violation(caught.value)[0] == "job.training_input.runtime_version"
    body["trainingInput"]["runtimeVersion"] = "2.8"
    body["trainingInput"]["pythonVersion"] = "3.7"
    validate_new_job(Job.parse(body, "job"))


def test_the_nearest_release_with_a_wheel() -> None:
    wheels = ["1.1.3", "1.2.0", "1.3.2", "0.19.0", "1.4.0rc1"]
    assert nearest_with_wheel("1.2.0", wheels) == "1.2.0"
    assert nearest_with_wheel("1.0.2", wheels) == "1.1.3"  # the oldest newer one
    assert nearest_with_wheel("1.4.0", wheels) == "1.3.2"  # else the newest older one
    assert nearest_with_wheel("1.0.2", []) is None


@pytest.fixture(scope="module")
def wheels() -> WheelIndex:
    index = WheelIndex()
    if not index.versions("scikit-learn"):
        pytest.skip("the package index cannot be reached (pip index versions found nothing)")
    return index


def test_runtime_layers_get_the_nearest_frameworks_with_a_wheel_and_the_served_scikit_learn(
    wheels: WheelIndex,
) -> None:
    """Runtime 2.8 had scikit-learn 1.0.2 and pandas 1.3.5 (no wheels for Python 3.11)."""
    plan = plan_layer(RUNTIMES["2.8"], wheels)
    sklearn_wanted, sklearn_installed = plan.frameworks["scikit-learn"]
    assert sklearn_wanted == "1.0.2"
    # No wheel for this Python: the release Cairn serves with, so the job's model deploys.
    assert sklearn_installed == metadata.version("scikit-learn")
    assert plan.frameworks["xgboost"] == ("1.5.2", "1.5.2")  # py3-none wheels install anywhere
    assert plan.frameworks["pandas"][1] != "1.3.5"
    assert "scikit-learn==" + sklearn_installed in plan.requirements()
    assert any("scikit-learn" in note and "1.0.2" in note for note in plan.notes())


def test_pins_are_honoured_with_a_wheel_and_replaced_with_a_warning_without(
    wheels: WheelIndex,
) -> None:
    provided = {
        "scikit-learn": "1.1.3",
        "xgboost": "1.7.6",
        "pandas": "1.5.0",
        "tensorflow": "2.15.1",
        "numpy": "1.26.4",
    }
    requires = {
        "trainer": [
            "scikit-learn==1.0.2",  # no wheel for this Python: the runtime's, with a warning
            "xgboost==1.5.2",  # has a wheel: installed over the runtime's
            "pandas==1.4.1",
            "tensorflow==2.8.0",
            "numpy>=1.20",  # the runtime's satisfies it
            "requests>=2",  # not the runtime's business
            'pywin32; sys_platform == "win32"',  # not for this machine
        ]
    }
    plan = plan_pins(requires, provided, wheels)
    assert plan.keep == ["xgboost==1.5.2", "requests>=2"]
    assert {"xgboost", "scikit-learn", "pandas", "tensorflow", "numpy"} <= plan.binary_only
    assert len(plan.warnings) == 3
    [sklearn_warning] = [w for w in plan.warnings if "scikit-learn" in w]
    assert "scikit-learn==1.0.2" in sklearn_warning
    assert "scikit-learn 1.1.3" in sklearn_warning
    assert any("tensorflow==2.8.0" in w and "2.15.1" in w for w in plan.warnings)
