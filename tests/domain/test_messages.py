"""proto3 JSON rules of the domain messages."""

from __future__ import annotations

import pytest

from cairn.domain.errors import ApiError, Code
from cairn.domain.jobs import (
    Job,
    TrainingInput,
    check_replica_limit,
    unsupported_training_features,
    validate_new_job,
)
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
        ([{"parameterName": "x", "type": "CATEGORICAL", "categoricalValues": ["a", "a"]}], None),
        ([{"parameterName": "x", "type": "CATEGORICAL", "categoricalValues": ["a", ""]}], None),
        (
            [
                {
                    "parameterName": "x",
                    "type": "CATEGORICAL",
                    "categoricalValues": ["a"],
                    "minValue": 1,
                }
            ],
            None,
        ),
        ([{"parameterName": "--x=1", "type": "INTEGER", "minValue": 0, "maxValue": 1}], None),
        ([{"parameterName": "x", "type": "INTEGER", "minValue": 0, "maxValue": 1e300}], None),
        ([{"parameterName": "x", "type": "DOUBLE", "minValue": -1e308, "maxValue": 1e308}], None),
        (
            [{"parameterName": "x", "type": "INTEGER", "minValue": 0, "maxValue": 1e7}],
            "GRID_SEARCH",
        ),
        (
            [
                {
                    "parameterName": "x",
                    "type": "DISCRETE",
                    "discreteValues": [0, 1],
                    "scaleType": "UNIT_LOG_SCALE",
                }
            ],
            None,
        ),
    ],
)
def test_hyperparameter_rules(params: list[dict[str, object]], algorithm: str | None) -> None:
    spec = {"goal": "MAXIMIZE", "params": params, **({"algorithm": algorithm} if algorithm else {})}
    job = Job.parse({"jobId": "j", "trainingInput": {**TRAINING, "hyperparameters": spec}}, "job")
    with pytest.raises(ApiError) as error:
        validate_new_job(job)
    assert error.value.field_violations[0].field.startswith("job.training_input.hyperparameters")


def test_custom_containers_are_honestly_unimplemented() -> None:
    version = Version.parse(
        {"name": "v", "deploymentUri": "gs://b/m", "container": {"image": "i"}}, "version"
    )
    with pytest.raises(ApiError) as error:
        validate_new_version(version)
    assert error.value.code is Code.UNIMPLEMENTED


def _invalid_field(call: object, *args: object) -> str:
    with pytest.raises(ApiError) as raised:
        call(*args)  # type: ignore[operator]
    assert raised.value.code is Code.INVALID_ARGUMENT
    return raised.value.field_violations[0].field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("workerCount", "9223372036854775808"),  # int64 + 1
        ("workerCount", 1e20),
        ("evaluatorCount", "-9223372036854775809"),
    ],
)
def test_integers_outside_their_proto_range_are_refused(field: str, value: object) -> None:
    body = {"jobId": "j", "trainingInput": {**TRAINING, field: value}}
    assert _invalid_field(Job.parse, body, "job").startswith("job.training_input.")


def test_int32_fields_refuse_what_does_not_fit_32_bits() -> None:
    body = {"name": "v", "manualScaling": {"nodes": 2**31}}
    assert _invalid_field(Version.parse, body, "version") == "version.manual_scaling.nodes"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"jobId": "nl\n", "trainingInput": TRAINING}, "job.job_id"),
        ({"jobId": "j", "trainingInput": TRAINING, "labels": {"team\n": "ml"}}, "job.labels"),
        ({"jobId": "j", "trainingInput": TRAINING, "labels": {"team": "ml\n"}}, "job.labels"),
        (
            {"jobId": "j", "trainingInput": {**TRAINING, "scheduling": {"maxRunningTime": "5s\n"}}},
            "job.training_input.scheduling.max_running_time",
        ),
        (
            {"jobId": "j", "trainingInput": {**TRAINING, "scheduling": {"maxWaitTime": "0s"}}},
            "job.training_input.scheduling.max_wait_time",
        ),
    ],
)
def test_trailing_newlines_and_zero_durations_do_not_pass(body: dict, field: str) -> None:
    """`$` matches before a final newline: "nl\\n" once made a model no request could reach."""
    assert _invalid_field(validate_new_job, Job.parse(body, "job")) == field


@pytest.mark.parametrize(
    "labels",
    [
        {f"k{i}": "v" for i in range(65)},
        {"k" * 64: "v"},
        {"k": "v" * 64},
        {"": "v"},
    ],
)
def test_labels_follow_googles_limits(labels: dict[str, str]) -> None:
    job = Job.parse({"jobId": "j", "trainingInput": TRAINING, "labels": labels}, "job")
    assert _invalid_field(validate_new_job, job) == "job.labels"


def test_sixty_four_labels_of_the_longest_kind_pass() -> None:
    labels = {f"k{i:02d}" + "x" * 59: "v" * 63 for i in range(64)}
    validate_new_job(Job.parse({"jobId": "j", "trainingInput": TRAINING, "labels": labels}, "job"))


def test_descriptions_are_at_most_8192_characters() -> None:
    body = {"name": "v", "deploymentUri": "gs://b/m", "description": "d" * 8193}
    assert _invalid_field(validate_new_version, Version.parse(body, "version")) == (
        "version.description"
    )
    validate_new_version(Version.parse({**body, "description": "d" * 8192}, "version"))


@pytest.mark.parametrize(
    ("training", "field"),
    [
        ({"args": ["--ok", "a\x00b"]}, "job.training_input.args[1]"),
        ({"pythonModule": "trainer.task\n"}, "job.training_input.python_module"),
        ({"pythonModule": "trainer/task"}, "job.training_input.python_module"),
        ({"args": ["x" * 70_000]}, "job.training_input"),
    ],
)
def test_jobs_no_process_could_start_are_refused(training: dict, field: str) -> None:
    job = Job.parse({"jobId": "j", "trainingInput": {**TRAINING, **training}}, "job")
    assert _invalid_field(validate_new_job, job) == field


@pytest.mark.parametrize(
    ("training", "field"),
    [
        ({"workerCount": "64"}, "job.training_input.worker_count"),
        ({"workerCount": "999999999999"}, "job.training_input.worker_count"),
        (
            {"workerCount": "10", "parameterServerCount": "60"},
            "job.training_input.parameter_server_count",
        ),
    ],
)
def test_clusters_above_the_replica_limit_are_refused(training: dict, field: str) -> None:
    custom = {
        "scaleTier": "CUSTOM",
        "masterType": "m",
        "workerType": "w",
        "parameterServerType": "p",
    }
    spec = Job.parse({"jobId": "j", "trainingInput": {**TRAINING, **custom, **training}}, "job")
    assert spec.training_input is not None
    assert _invalid_field(check_replica_limit, spec.training_input, 64) == field


def test_predefined_tiers_count_against_the_replica_limit() -> None:
    spec = TrainingInput.model_validate({**TRAINING, "scaleTier": "PREMIUM_1"})  # 31 replicas
    check_replica_limit(spec, 31)
    assert _invalid_field(check_replica_limit, spec, 30) == "job.training_input.scale_tier"


def test_basic_tpu_is_refused_at_create() -> None:
    spec = TrainingInput.model_validate({**TRAINING, "scaleTier": "BASIC_TPU"})
    unsupported = unsupported_training_features(spec)
    assert unsupported is not None and unsupported.code is Code.FAILED_PRECONDITION
