"""Requests that once hung, crashed or fooled the server: each now gets a clean Google error."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from tests.filesystems import read_only
from tests.remote import unique

P = "/v1/projects/hardening"
TRAINING = {
    "packageUris": ["gs://hardening/trainer-0.1.tar.gz"],
    "pythonModule": "trainer.task",
    "region": "us-central1",
}


def call(server: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**server.headers(), **kwargs.pop("headers", {})}
    return httpx.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


def upload(server: Any, bucket: str, name: str, data: bytes = b"data") -> httpx.Response:
    return call(
        server,
        "POST",
        f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(name, safe='')}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def google_error(response: httpx.Response, status: str, http: int) -> dict[str, Any]:
    assert response.status_code == http, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["status"] == status and error["code"] == http and error["message"]
    return error


def violated_field(response: httpx.Response) -> str:
    error = google_error(response, "INVALID_ARGUMENT", 400)
    field: str = error["details"][0]["fieldViolations"][0]["field"]
    return field


def create_job(server: Any, **training: Any) -> httpx.Response:
    body = {"jobId": unique("job"), "trainingInput": {**TRAINING, **training}}
    return call(server, "POST", f"{P}/jobs", json=body)


# ----- resources a request asks for -------------------------------------------------------


@pytest.mark.parametrize("workers", ["999999999999", "10000", "64"])
def test_replica_counts_above_the_limit_are_refused_at_create(
    cairn_server: Any, workers: str
) -> None:
    """999999999999 workers hung the create request in the port search; 10 000 hit E2BIG."""
    response = create_job(
        cairn_server, scaleTier="CUSTOM", masterType="m", workerType="w", workerCount=workers
    )
    assert violated_field(response) == "job.training_input.worker_count"
    assert "at most 64 replicas" in response.text


def test_a_cluster_within_the_limit_is_accepted(cairn_server: Any) -> None:
    response = create_job(
        cairn_server,
        scaleTier="CUSTOM",
        masterType="n1-standard-4",
        workerType="n1-standard-4",
        workerCount="63",
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("training", "field"),
    [
        ({"args": ["--lr=0.1", "a\x00b"]}, "job.training_input.args[1]"),
        ({"args": ["gs://hardening/../elsewhere"]}, "job.training_input.args[0]"),
        ({"args": ["--data=gs://hardening/a/../../x"]}, "job.training_input.args[0]"),
        ({"pythonModule": "trainer.task\n"}, "job.training_input.python_module"),
    ],
)
def test_jobs_that_could_never_run_are_refused_at_create(
    cairn_server: Any, training: dict[str, Any], field: str
) -> None:
    assert violated_field(create_job(cairn_server, **training)) == field


def test_bucket_arguments_are_accepted(cairn_server: Any) -> None:
    response = create_job(cairn_server, args=["--data=gs://hardening/train.csv", "gs://hardening/"])
    assert response.status_code == 200, response.text


# ----- server paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("training", "field"),
    [
        ({"jobDir": "~"}, "job.training_input.job_dir"),
        ({"jobDir": "/tmp/out"}, "job.training_input.job_dir"),
        ({"packageUris": ["/etc/passwd"]}, "job.training_input.package_uris[0]"),
        (
            {"packageUris": ["gs://hardening/p.tar.gz", "file:///etc"]},
            "job.training_input.package_uris[1]",
        ),
        ({"args": ["--data=/etc"]}, "job.training_input.args[0]"),
        ({"args": ["--epochs", "3", "~/secrets"]}, "job.training_input.args[2]"),
    ],
)
def test_jobs_naming_server_paths_are_refused(
    cairn_server: Any, training: dict[str, Any], field: str
) -> None:
    assert violated_field(create_job(cairn_server, **training)) == field


@pytest.mark.parametrize(
    ("version", "field"),
    [
        ({"deploymentUri": "~"}, "version.deployment_uri"),  # copied a 4 GB home directory
        ({"deploymentUri": "/etc"}, "version.deployment_uri"),
        ({"deploymentUri": "/tmp/../etc"}, "version.deployment_uri"),
        ({"deploymentUri": "file:///etc"}, "version.deployment_uri"),
        (
            {"deploymentUri": "gs://hardening/m", "packageUris": ["/etc/passwd"]},
            "version.package_uris[0]",
        ),
    ],
)
def test_versions_naming_server_paths_are_refused(
    cairn_server: Any, version: dict[str, Any], field: str
) -> None:
    model = unique("paths")
    call(cairn_server, "POST", f"{P}/models", json={"name": model})
    response = call(
        cairn_server, "POST", f"{P}/models/{model}/versions", json={"name": "v1", **version}
    )
    assert violated_field(response) == field
    listed = call(cairn_server, "GET", f"{P}/models/{model}/versions").json()
    assert listed == {}


# ----- names, labels and sizes -------------------------------------------------------------


def test_trailing_newlines_do_not_pass_the_name_checks(cairn_server: Any) -> None:
    """ "nl\\n" created a model, a directory and a version no request could reach."""
    assert violated_field(call(cairn_server, "POST", f"{P}/models", json={"name": "nl\n"})) == (
        "model.name"
    )
    assert violated_field(call(cairn_server, "GET", f"{P}/models/nl%0A")) == "name"
    job = {"jobId": "nl\n", "trainingInput": TRAINING}
    assert violated_field(call(cairn_server, "POST", f"{P}/jobs", json=job)) == "job.job_id"
    model = unique("names")
    labels = {"labels": {"team": "ml\n"}}
    response = call(cairn_server, "POST", f"{P}/models", json={"name": model, **labels})
    assert violated_field(response) == "model.labels"
    call(cairn_server, "POST", f"{P}/models", json={"name": model})
    response = call(
        cairn_server,
        "POST",
        f"{P}/models/{model}/versions",
        json={"name": "v\n", "deploymentUri": "gs://hardening/m"},
    )
    assert violated_field(response) == "version.name"


@pytest.mark.parametrize(
    "labels",
    [{f"k{i}": "v" for i in range(65)}, {"k" * 64: "v"}, {"k": "v" * 64}, {"Key": "v"}],
)
def test_labels_follow_googles_limits(cairn_server: Any, labels: dict[str, str]) -> None:
    response = call(
        cairn_server, "POST", f"{P}/models", json={"name": unique("m"), "labels": labels}
    )
    assert violated_field(response) == "model.labels"


def test_descriptions_are_limited_on_create_and_patch(cairn_server: Any) -> None:
    model = unique("described")
    too_long = "d" * 8193
    response = call(
        cairn_server, "POST", f"{P}/models", json={"name": model, "description": too_long}
    )
    assert violated_field(response) == "model.description"
    call(cairn_server, "POST", f"{P}/models", json={"name": model, "description": "d" * 8192})
    patch = call(
        cairn_server,
        "PATCH",
        f"{P}/models/{model}",
        params={"updateMask": "description"},
        json={"description": too_long},
    )
    assert violated_field(patch) == "model.description"


def test_integers_that_do_not_fit_their_proto_type_are_refused(cairn_server: Any) -> None:
    response = create_job(
        cairn_server, masterConfig={"acceleratorConfig": {"count": "99999999999999999999999"}}
    )
    assert violated_field(response) == "job.training_input.master_config.accelerator_config.count"


def test_page_sizes(cairn_server: Any) -> None:
    project = f"/v1/projects/{unique('pages')}"
    assert violated_field(call(cairn_server, "GET", f"{project}/models?pageSize=-1")) == "page_size"
    for index in range(101):
        call(cairn_server, "POST", f"{project}/models", json={"name": f"m{index}"})
    page = call(cairn_server, "GET", f"{project}/models?pageSize=100000").json()
    assert len(page["models"]) == 100  # clamped to the maximum, as Google does
    assert "nextPageToken" in page


def test_a_filter_of_5000_parentheses_is_invalid_argument(cairn_server: Any) -> None:
    response = call(cairn_server, "GET", f"{P}/jobs", params={"filter": "(" * 5000})
    assert violated_field(response) == "filter"
    assert len(response.text) < 2000


# ----- job logs -----------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-1, -(2**70)])
def test_log_cursors_with_negative_offsets_are_invalid_argument(
    cairn_server: Any, offset: int
) -> None:
    job = create_job(cairn_server).json()["jobId"]
    cursor = base64.urlsafe_b64encode(json.dumps({"logs/service.log": offset}).encode()).decode()
    response = call(cairn_server, "GET", f"/cairn{P}/jobs/{job}/logs", params={"cursor": cursor})
    assert violated_field(response) == "cursor"


def test_log_cursors_with_huge_offsets_read_nothing(cairn_server: Any) -> None:
    job = create_job(cairn_server).json()["jobId"]
    cursor = base64.urlsafe_b64encode(json.dumps({"logs/service.log": 2**70}).encode()).decode()
    response = call(cairn_server, "GET", f"/cairn{P}/jobs/{job}/logs", params={"cursor": cursor})
    assert response.status_code == 200, response.text
    assert response.json()["entries"] == []


# ----- uploads ------------------------------------------------------------------------------


def test_an_object_name_part_longer_than_the_disk_allows_is_invalid(cairn_server: Any) -> None:
    error = google_error(upload(cairn_server, "hardening", "a" * 300), "INVALID_ARGUMENT", 400)
    assert "at most 255 bytes" in error["message"]


def test_uploads_never_land_inside_a_folder_of_the_same_name(cairn_server: Any) -> None:
    folder = unique("folder")
    assert upload(cairn_server, "hardening", f"{folder}/file").status_code == 200
    # Onto the folder: `cp` semantics once stored it as <folder>/upload-<random>.
    onto_folder = upload(cairn_server, "hardening", folder)
    assert (
        "a folder of that name" in google_error(onto_folder, "FAILED_PRECONDITION", 400)["message"]
    )
    # Below an object: the object cannot also be a folder.
    below_file = upload(cairn_server, "hardening", f"{folder}/file/inside")
    assert "is an object" in google_error(below_file, "FAILED_PRECONDITION", 400)["message"]
    stored = cairn_server.home / "storage" / "hardening" / folder
    assert [path.name for path in stored.iterdir()] == ["file"]


def test_uploads_into_read_only_storage_are_failed_precondition(cairn_server: Any) -> None:
    bucket = f"read-only-{unique('b').lower().replace('_', '-')}"
    assert upload(cairn_server, bucket, "first").status_code == 200
    with read_only(Path(cairn_server.home) / "storage" / bucket):
        response = upload(cairn_server, bucket, "second")
        error = google_error(response, "FAILED_PRECONDITION", 400)
    assert f"gs://{bucket}/second" in error["message"]
