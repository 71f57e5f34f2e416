"""proto3 JSON rules of the domain messages."""

from __future__ import annotations

import pytest

from cairn.domain.errors import ApiError, Code
from cairn.domain.jobs import Job, validate_new_job
from cairn.domain.models import Version, validate_new_version
from cairn.domain.operations import OperationMetadata

TRAINING = {
    "packageUris": ["gs://b/t.tar.gz"],
    "pythonModule": "trainer.task",
    "region": "us-central1",
}


def test_int64_fields_accept_numbers_and_strings_and_render_as_strings() -> None:
    job = Job.parse(
        {
            "jobId": "j",
            "trainingInput": {
                **TRAINING,
                "scaleTier": "CUSTOM",
                "masterType": "m",
                "workerType": "w",
                "workerCount": 4,
            },
        },
        "job",
    )
    assert job.training_input is not None and job.training_input.worker_count == 4
    assert job.to_json()["trainingInput"]["workerCount"] == "4"
    assert (
        Job.parse(
            {"jobId": "j", "trainingInput": {**TRAINING, "workerCount": "7"}}, "job"
        ).training_input.worker_count
        == 7
    )  # type: ignore[union-attr]


def test_snake_case_input_is_accepted_and_rendered_camel_case() -> None:
    job = Job.parse(
        {
            "job_id": "j",
            "training_input": {"package_uris": ["gs://b/t"], "python_module": "t", "region": "r"},
        },
        "job",
    )
    assert job.to_json() == {
        "jobId": "j",
        "trainingInput": {"packageUris": ["gs://b/t"], "pythonModule": "t", "region": "r"},
    }


def test_defaults_are_omitted_but_set_messages_stay() -> None:
    version = Version.parse(
        {
            "name": "v",
            "deploymentUri": "gs://b/m",
            "autoScaling": {"minNodes": 0},
            "labels": {},
            "description": "",
        },
        "version",
    )
    assert version.to_json() == {"name": "v", "deploymentUri": "gs://b/m", "autoScaling": {}}


def test_timestamps_render_rfc3339_z() -> None:
    meta = OperationMetadata.model_validate(
        {"createTime": "2020-12-14T01:11:02+01:00", "projectNumber": 12}
    )
    assert meta.to_json() == {"createTime": "2020-12-14T00:11:02Z", "projectNumber": "12"}


def test_unknown_fields_use_googles_wording() -> None:
    with pytest.raises(ApiError) as error:
        Job.parse({"jobId": "j", "trainingInput": {**TRAINING, "colour": 1}}, "job")
    assert error.value.code is Code.INVALID_ARGUMENT
    assert "Unknown name \"colour\" at 'job.training_input'" in error.value.message


def test_bool_is_not_an_integer() -> None:
    with pytest.raises(ApiError):
        Job.parse({"jobId": "j", "trainingInput": {**TRAINING, "workerCount": True}}, "job")


@pytest.mark.parametrize(
    ("params", "algorithm"),
    [
        ([{"parameterName": "x", "type": "INTEGER", "minValue": 0.5, "maxValue": 3}], None),
        (
            [
                {
                    "parameterName": "x",
                    "type": "DOUBLE",
                    "minValue": 0,
                    "maxValue": 1,
                    "scaleType": "UNIT_LOG_SCALE",
                }
            ],
            None,
        ),
        ([{"parameterName": "x", "type": "DISCRETE", "discreteValues": [1, 1, 2]}], None),
        ([{"parameterName": "x", "type": "CATEGORICAL"}], None),
        ([{"parameterName": "x", "type": "INTEGER", "minValue": 0, "maxValue": 1}] * 2, None),
        ([{"parameterName": "x", "type": "DOUBLE", "minValue": 0, "maxValue": 1}], "GRID_SEARCH"),
        ([{"parameterName": "x", "minValue": 0, "maxValue": 1}], None),
    ],
)
def test_hyperparameter_rules(params: list[dict[str, object]], algorithm: str | None) -> None:
    spec = {"goal": "MAXIMIZE", "params": params, **({"algorithm": algorithm} if algorithm else {})}
    job = Job.parse({"jobId": "j", "trainingInput": {**TRAINING, "hyperparameters": spec}}, "job")
    with pytest.raises(ApiError) as error:
        validate_new_job(job)
    assert error.value.field_violations[0].field.startswith("job.training_input.hyperparameters")


def test_custom_containers_and_routines_are_honestly_unimplemented() -> None:
    version = Version.parse(
        {"name": "v", "predictionClass": "m.P", "packageUris": ["gs://b/p"]}, "version"
    )
    with pytest.raises(ApiError) as error:
        validate_new_version(version)
    assert error.value.code is Code.UNIMPLEMENTED
