"""A job runs as its service account (or the project's service agent), never as its submitter."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from tests.factories import build_trainer_sdist
from tests.remote import unique, upload_file, wait_job

# Uses google-auth exactly as a trainer on AI Platform would: Application Default Credentials.
TRAINER = """
import json, os, sys, urllib.error, urllib.request
import google.auth, google.auth.transport.requests

credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
credentials.refresh(google.auth.transport.requests.Request())
api, project = os.environ["CAIRN_API"], sys.argv[sys.argv.index("--project") + 1]

def call(method, path, body=None):
    request = urllib.request.Request(
        f"{api}/v1/projects/{project}/{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {credentials.token}", "Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(request).status
    except urllib.error.HTTPError as error:
        return error.code

who = json.load(urllib.request.urlopen(urllib.request.Request(
    f"{api}/cairn/v1/auth/principal", headers={"Authorization": f"Bearer {credentials.token}"})))
print("RESULT", json.dumps({"who": who["principal"], "list": call("GET", "jobs"),
      "create": call("POST", "jobs", {"jobId": "spawned", "trainingInput": {}}),
      "token": credentials.token}), flush=True)
"""


def trainer_result(server: Any, project: str, job_id: str) -> dict[str, Any]:
    """What the trainer printed on its `RESULT` line."""
    response = httpx.get(
        f"{server.url}/cairn/v1/projects/{project}/jobs/{job_id}/logs", headers=server.headers()
    )
    for entry in response.json()["entries"]:
        if entry.get("text", "").startswith("RESULT "):
            return dict(json.loads(entry["text"][len("RESULT ") :]))
    raise AssertionError(f"the trainer printed no result: {response.text}")


def test_a_job_runs_as_its_service_account_with_that_accounts_rights(
    cairn_server: Any, tmp_path: Path, principal_with: Callable[..., dict[str, str]]
) -> None:
    project = unique("jobid").replace("_", "-")
    viewer = principal_with(project, "roles/ml.viewer")
    account = viewer["X-Account"]
    sdist = build_trainer_sdist(tmp_path, TRAINER)
    package = upload_file(
        cairn_server.url, sdist, "staging", f"{project}/{sdist.name}", cairn_server.headers()
    )
    ml = cairn_server.client()
    results = {}
    for name, training in (
        ("as_account", {"serviceAccount": account}),
        ("as_agent", {}),
    ):
        job_id = unique(name)
        body = {
            "jobId": job_id,
            "trainingInput": {
                "scaleTier": "BASIC",
                "packageUris": [package],
                "pythonModule": "trainer.task",
                "region": "us-central1",
                "args": ["--project", project],
                **training,
            },
        }
        ml.projects().jobs().create(parent=f"projects/{project}", body=body).execute()
        job = wait_job(ml, f"projects/{project}/jobs/{job_id}")
        assert job["state"] == "SUCCEEDED", job
        results[name] = trainer_result(cairn_server, project, job_id)
    as_account, as_agent = results["as_account"], results["as_agent"]
    assert as_account["who"] == f"serviceAccount:{account}"
    assert as_account["list"] == 200 and as_account["create"] == 403
    assert as_agent["who"].startswith("serviceAccount:service-")
    assert as_agent["list"] == 200 and as_agent["create"] == 403
    # The job ended: its credential no longer works.
    after = httpx.get(
        f"{cairn_server.url}/cairn/v1/auth/principal",
        headers={"Authorization": f"Bearer {as_account['token']}"},
    )
    assert after.status_code == 401


def test_running_a_job_as_an_account_needs_act_as(
    cairn_server: Any, principal_with: Callable[..., dict[str, str]]
) -> None:
    project = unique("actas").replace("_", "-")
    account = principal_with(project, None)["X-Account"]
    developer = principal_with(project, "roles/ml.developer")
    body = {
        "jobId": unique("runas"),
        "trainingInput": {
            "scaleTier": "BASIC",
            "packageUris": ["gs://staging/none.tar.gz"],
            "pythonModule": "trainer.task",
            "region": "us-central1",
            "serviceAccount": account,
        },
    }
    response = httpx.post(
        f"{cairn_server.url}/v1/projects/{project}/jobs",
        json=body,
        headers={"Authorization": developer["Authorization"]},
    )
    assert response.status_code == 403, response.text
    assert "iam.serviceAccounts.actAs" in response.json()["error"]["message"]
