"""Malformed requests: each gets the right Google error status, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.remote import unique

P = "/v1/projects/bad_requests"

VALID_TRAINING = {
    "scaleTier": "BASIC",
    "packageUris": ["gs://b/p.tar.gz"],
    "pythonModule": "trainer.task",
    "region": "us-central1",
}


def call(server: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    kwargs["headers"] = {**server.headers(), **(kwargs.get("headers") or {})}
    return httpx.request(method, server.url + path, timeout=30, **kwargs)


def assert_google_error(response: httpx.Response, status: str, http: int) -> dict[str, Any]:
    assert response.status_code == http, response.text
    body: dict[str, Any] = response.json()["error"]
    assert body["status"] == status
    assert body["code"] == http
    assert body["message"]
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"jobId": "1starts_with_digit", "trainingInput": VALID_TRAINING}, "job.job_id"),
        ({"jobId": "has-dash", "trainingInput": VALID_TRAINING}, "job.job_id"),
        ({"jobId": "x" * 129, "trainingInput": VALID_TRAINING}, "job.job_id"),
        ({"jobId": "no_input"}, "job"),
        (
            {
                "jobId": "both",
                "trainingInput": VALID_TRAINING,
                "predictionInput": {"dataFormat": "JSON"},
            },
            "job",
        ),
        (
            {
                "jobId": "custom_no_master",
                "trainingInput": {**VALID_TRAINING, "scaleTier": "CUSTOM"},
            },
            "job.training_input.master_type",
        ),
        (
            {
                "jobId": "count_no_type",
                "trainingInput": {
                    **VALID_TRAINING,
                    "scaleTier": "CUSTOM",
                    "masterType": "n1-standard-4",
                    "workerCount": "2",
                },
            },
            "job.training_input.worker_type",
        ),
        (
            {
                "jobId": "count_basic",
                "trainingInput": {
                    **VALID_TRAINING,
                    "workerCount": "2",
                    "workerType": "n1-standard-4",
                },
            },
            "job.training_input.worker_count",
        ),
        (
            {
                "jobId": "grid_double",
                "trainingInput": {
                    **VALID_TRAINING,
                    "hyperparameters": {
                        "algorithm": "GRID_SEARCH",
                        "goal": "MAXIMIZE",
                        "params": [
                            {
                                "parameterName": "lr",
                                "type": "DOUBLE",
                                "minValue": 0.1,
                                "maxValue": 1,
                            }
                        ],
                    },
                },
            },
            "job.training_input.hyperparameters.params[0].type",
        ),
        (
            {
                "jobId": "no_region",
                "trainingInput": {k: v for k, v in VALID_TRAINING.items() if k != "region"},
            },
            "job.training_input.region",
        ),
        (
            {"jobId": "unknown_field", "trainingInput": VALID_TRAINING, "colour": "red"},
            "job.colour",
        ),
        (
            {"jobId": "wrong_type", "trainingInput": {**VALID_TRAINING, "workerCount": "many"}},
            "job.training_input.worker_count",
        ),
        (
            {"jobId": "wrong_enum", "trainingInput": {**VALID_TRAINING, "scaleTier": "HUGE"}},
            "job.training_input.scale_tier",
        ),
        (
            {"jobId": "args_not_list", "trainingInput": {**VALID_TRAINING, "args": "--epochs 3"}},
            "job.training_input.args",
        ),
        (
            {"jobId": "bad_label", "trainingInput": VALID_TRAINING, "labels": {"Bad Key": "x"}},
            "job.labels",
        ),
    ],
)
def test_invalid_jobs_name_the_field(cairn_server: Any, body: dict[str, Any], field: str) -> None:
    error = assert_google_error(
        call(cairn_server, "POST", f"{P}/jobs", json=body), "INVALID_ARGUMENT", 400
    )
    violations = error["details"][0]["fieldViolations"]
    assert field in [v["field"] for v in violations], error


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "http"),
    [
        ("POST", f"{P}/jobs", {"content": b"{not json"}, "INVALID_ARGUMENT", 400),
        ("POST", f"{P}/jobs", {"content": b"[1, 2]"}, "INVALID_ARGUMENT", 400),
        ("POST", f"{P}/jobs", {"content": b""}, "INVALID_ARGUMENT", 400),
        ("POST", f"{P}/models", {"json": {"name": "has space"}}, "INVALID_ARGUMENT", 400),
        (
            "POST",
            f"{P}/models",
            {"json": {"name": "m", "regions": ["a", "b"]}},
            "INVALID_ARGUMENT",
            400,
        ),
        ("GET", f"{P}/jobs/missing_job", {}, "NOT_FOUND", 404),
        ("GET", f"{P}/jobs/bad-id", {}, "INVALID_ARGUMENT", 400),
        ("GET", "/v1/projects/%C3%A9t%C3%A9/jobs/j", {}, "INVALID_ARGUMENT", 400),
        ("GET", "/v1/projects/%C3%A9t%C3%A9/models/m", {}, "INVALID_ARGUMENT", 400),
        ("GET", f"{P}/models/missing_model", {}, "NOT_FOUND", 404),
        ("GET", f"{P}/models/missing_model/versions/v1", {}, "NOT_FOUND", 404),
        ("DELETE", f"{P}/models/missing_model", {}, "NOT_FOUND", 404),
        ("GET", f"{P}/operations/missing-1", {}, "NOT_FOUND", 404),
        (
            "POST",
            f"{P}/models/missing_model:predict",
            {"json": {"instances": [[1]]}},
            "NOT_FOUND",
            404,
        ),
        ("POST", f"{P}/jobs/missing_job:cancel", {"json": {}}, "NOT_FOUND", 404),
        ("GET", f"{P}/jobs", {"params": {"pageSize": "ten"}}, "INVALID_ARGUMENT", 400),
        ("GET", f"{P}/jobs", {"params": {"pageToken": "garbage!"}}, "INVALID_ARGUMENT", 400),
        ("GET", f"{P}/jobs", {"params": {"filter": "state:(FAILED"}}, "INVALID_ARGUMENT", 400),
        ("GET", "/v1/nothing/here", {}, "NOT_FOUND", 404),
        ("PUT", f"{P}/jobs", {}, "NOT_FOUND", 404),
        ("GET", f"{P}/jobs/j:getIamPolicy", {}, "NOT_FOUND", 404),
        ("GET", f"{P}/locations/nowhere-9", {}, "NOT_FOUND", 404),
        # Found by the long fuzz: a Unicode digit int() refuses was a 500.
        ("GET", f"{P}/locations", {"params": {"pageToken": "¹"}}, "INVALID_ARGUMENT", 400),
        ("POST", f"{P}/models/m:explain", {"json": {"instances": []}}, "UNIMPLEMENTED", 501),
        (
            "PATCH",
            f"{P}/jobs/missing_job",
            {"json": {"labels": {}}, "params": {"updateMask": "labels"}},
            "NOT_FOUND",
            404,
        ),
    ],
)
def test_bad_requests_get_google_errors(
    cairn_server: Any, method: str, path: str, kwargs: dict[str, Any], status: str, http: int
) -> None:
    assert_google_error(call(cairn_server, method, path, **kwargs), status, http)


def test_global_query_parameters_are_accepted(cairn_server: Any) -> None:
    response = call(
        cairn_server,
        "GET",
        f"{P}:getConfig",
        params={"alt": "json", "prettyPrint": "false", "$.xgafv": "2"},
    )
    assert response.status_code == 200


def test_oversize_predict_body_is_refused(cairn_server: Any) -> None:
    model = unique("big")
    call(cairn_server, "POST", f"{P}/models", json={"name": model})
    big = b'{"instances": [' + b"[1.0, 2.0, 3.0, 4.0]," * 100_000 + b"[1.0]]}"
    error = assert_google_error(
        call(
            cairn_server,
            "POST",
            f"{P}/models/{model}:predict",
            content=big,
            headers={"Content-Type": "application/json"},
        ),
        "INVALID_ARGUMENT",
        400,
    )
    assert "exceeds the limit" in error["message"]


def test_patch_refuses_unknown_masks(cairn_server: Any) -> None:
    model = unique("masks")
    call(cairn_server, "POST", f"{P}/models", json={"name": model})
    error = assert_google_error(
        call(
            cairn_server,
            "PATCH",
            f"{P}/models/{model}",
            json={"regions": ["x"]},
            params={"updateMask": "regions"},
        ),
        "INVALID_ARGUMENT",
        400,
    )
    assert "regions" in error["message"]
