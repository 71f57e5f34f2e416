"""Fuzzing every ml v1 method over HTTP: never a 5xx, always Google's error shape.

Requests come from `fuzz_requests` (hypothesis strategies built from the discovery
document). Each one is sent to the real server; afterwards the server must still answer,
list what the run created, and hold nothing in a transitional state.

`make test` sends a few hundred requests. Set CAIRN_FUZZ_REQUESTS to a count for a long
run; it prints how many requests went out and a histogram of their status codes.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from tests.api.fuzz_requests import FuzzRequest, Names, RequestFactory, read_discovery
from tests.factories import sklearn_model_dir
from tests.remote import unique, upload_dir, upload_file

from cairn.domain.errors import Code

COUNT_VARIABLE = "CAIRN_FUZZ_REQUESTS"
SHORT_RUN = 300
SETTLE_SECONDS = 120.0
BUCKET = "fuzz-storage"
CANONICAL_CODES = frozenset(code.name for code in Code)
TRANSITIONAL_VERSION_STATES = frozenset({"CREATING", "UPDATING", "DELETING"})
TRANSITIONAL_JOB_STATES = frozenset({"QUEUED", "PREPARING", "RUNNING", "CANCELLING"})


@dataclass
class FuzzTarget:
    """A project of its own on the shared server, with one version that serves."""

    client: httpx.Client
    names: Names
    storage_uris: list[str]
    serving_version: str


@pytest.fixture(scope="module")
def fuzz_target(
    cairn_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    project = unique("fuzz")
    headers = cairn_server.headers()
    client = httpx.Client(base_url=cairn_server.url, headers=headers, timeout=60)
    scratch = tmp_path_factory.mktemp("fuzz")
    model_uri = upload_dir(
        cairn_server.url, sklearn_model_dir(scratch / "model"), BUCKET, f"{project}/model", headers
    )
    readme = scratch / "README.txt"
    readme.write_text("a folder without a model\n")
    upload_file(cairn_server.url, readme, BUCKET, f"{project}/empty/README.txt", headers)
    # The serving model is known to predict only, so fuzzing never rescales or deletes it.
    _ok(client.post(f"/v1/projects/{project}/models", json={"name": "serving"}))
    operation = _ok(
        client.post(
            f"/v1/projects/{project}/models/serving/versions",
            json={"name": "v1", "deploymentUri": model_uri},
        )
    )
    _wait_done(client, operation["name"])
    serving_version = f"{project}/models/serving/versions/v1"
    names = Names(
        project,
        predict_targets=[
            serving_version,
            f"{project}/models/serving",
            f"{project}/models/absent",
            f"{project}/models/serving/versions/absent",
        ],
    )
    storage_uris = [
        f"gs://{BUCKET}/{project}/empty/",
        f"gs://{BUCKET}/{project}/missing/trainer-0.1.tar.gz",
        f"gs://{BUCKET}/{project}/jobs/out",
    ]
    # A model and a job to start from, so that requests naming known resources find some.
    _ok(client.post(f"/v1/projects/{project}/models", json={"name": "seed"}))
    names.add("model", "seed")
    training = {"packageUris": storage_uris[1:2], "pythonModule": "trainer.task", "region": "r"}
    _ok(
        client.post(
            f"/v1/projects/{project}/jobs", json={"jobId": "seed", "trainingInput": training}
        )
    )
    names.add("job", "seed")
    yield FuzzTarget(client, names, storage_uris, serving_version)
    client.close()


def test_fuzzed_requests_get_google_errors_and_leave_the_server_consistent(
    fuzz_target: FuzzTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    count = int(os.environ.get(COUNT_VARIABLE) or SHORT_RUN)
    factory = RequestFactory(read_discovery(), fuzz_target.storage_uris)
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=COUNT_VARIABLE not in os.environ,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
    )
    @given(factory.requests())
    def send(request: FuzzRequest) -> None:
        response = _send(fuzz_target, request)
        statuses[response.status_code] += 1
        problem = response_problem(request, response)
        assert problem is None, f"{problem}\n{_describe(request, response)}"
        _learn_names(fuzz_target.names, request, response)

    send()
    _assert_consistent(fuzz_target)
    if COUNT_VARIABLE in os.environ:
        with capsys.disabled():
            histogram = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
            print(f"\nfuzz: {sum(statuses.values())} requests; status codes {histogram}")


# ----- sending and judging ---------------------------------------------------------------


def _send(target: FuzzTarget, request: FuzzRequest) -> httpx.Response:
    path = target.names.path(request.method.path, request.segments)
    headers = {"Content-Type": request.content_type} if request.content_type else {}
    if not request.authenticated:
        headers["Authorization"] = ""
    return target.client.request(
        request.http_method,
        "/" + path,
        params=request.query,
        content=request.body,
        headers=headers,
    )


def response_problem(request: FuzzRequest, response: httpx.Response) -> str | None:
    """What is wrong with the answer to `request`, or None."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        return f"the body of a {status} is not JSON"
    if status < 400:
        return None if isinstance(body, dict) else "a success body is not a JSON object"
    error = body.get("error") if isinstance(body, dict) else None
    if request.method.is_predict and isinstance(error, str):
        # Online prediction's own error shape, for bad instances and a node that stopped.
        return None if status in (400, 503) else f"predict answered {status} with a text error"
    if not isinstance(error, dict) or set(error) - {"code", "message", "status", "details"}:
        return "the error body is not Google's {'error': {'code', 'message', 'status'}}"
    if error.get("code") != status or not isinstance(error.get("message"), str):
        return "the error's code differs from the HTTP status, or it has no message"
    if error.get("status") not in CANONICAL_CODES:
        return f"{error.get('status')!r} is not a canonical code"
    if status >= 500 and not _allowed_server_error(request, status, error["status"]):
        return f"a server error: {status} {error['status']}"
    return None


def _allowed_server_error(request: FuzzRequest, status: int, code: str) -> bool:
    """501 for methods Cairn does not build; 503 for a prediction a version cannot serve."""
    if status == 501 and code == "UNIMPLEMENTED":
        return True
    return status == 503 and code == "UNAVAILABLE" and request.method.is_predict


def _learn_names(names: Names, request: FuzzRequest, response: httpx.Response) -> None:
    """Remember resources the request created, so later requests can act on them."""
    if response.status_code != 200 or request.http_method != "POST":
        return
    body = response.json()
    method = request.method.id
    if method == "projects.models.create":
        names.add("model", str(body["name"]).rsplit("/", 1)[-1])
    elif method == "projects.jobs.create":
        names.add("job", str(body["jobId"]))
    elif method == "projects.models.versions.create":
        names.add("operation", str(body["name"]).rsplit("/", 1)[-1])
        _, _, _, model, _, version = str(body["metadata"]["version"]["name"]).split("/")
        names.add_version(model, version)


def _describe(request: FuzzRequest, response: httpx.Response) -> str:
    body = request.body if request.body is None or len(request.body) < 2000 else request.body[:2000]
    return (
        f"{request.kind} request {request.http_method} {response.request.url} "
        f"({request.method.id})\nbody: {body!r}\nanswer {response.status_code}: "
        f"{response.text[:2000]}"
    )


# ----- after the run ---------------------------------------------------------------------


def _assert_consistent(target: FuzzTarget) -> None:
    """The server answers, lists everything, and nothing stays in a transitional state."""
    client, project = target.client, target.names.project
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        unsettled = _unsettled(client, project)
        if not unsettled:
            break
        assert time.monotonic() < deadline, f"still unsettled after {SETTLE_SECONDS}s: {unsettled}"
        time.sleep(0.5)
    _ok(client.get(f"/v1/projects/{project}:getConfig"))
    answer = client.post(
        f"/v1/projects/{target.serving_version}:predict",
        json={"instances": [[1.0, 2.0, 3.0, 4.0]]},
    )
    assert answer.status_code == 200, answer.text


def _unsettled(client: httpx.Client, project: str) -> list[str]:
    base = f"/v1/projects/{project}"
    found = [
        f"job {job['jobId']} {job['state']}"
        for job in _all(client, f"{base}/jobs", "jobs")
        if job.get("state") in TRANSITIONAL_JOB_STATES
    ]
    found += [
        f"operation {operation['name']}"
        for operation in _all(client, f"{base}/operations", "operations")
        if not operation.get("done")
    ]
    for model in _all(client, f"{base}/models", "models"):
        model_id = str(model["name"]).rsplit("/", 1)[-1]
        found += [
            f"version {version['name']} {version['state']}"
            for version in _all(client, f"{base}/models/{model_id}/versions", "versions")
            if version.get("state") in TRANSITIONAL_VERSION_STATES
        ]
    return found


def _all(client: httpx.Client, path: str, collection: str) -> list[dict[str, Any]]:
    """Every item of a list method, page by page."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = _ok(
            client.get(path, params={"pageSize": 100, **({"pageToken": token} if token else {})})
        )
        items += page.get(collection, [])
        token = page.get("nextPageToken")
        if not token:
            return items


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _wait_done(client: httpx.Client, operation: str) -> None:
    deadline = time.monotonic() + 120
    while not _ok(client.get(f"/v1/{operation}")).get("done"):
        assert time.monotonic() < deadline, f"{operation} is not done"
        time.sleep(0.2)
