"""Real things that write logs, for the logging tests: jobs, a logged model, a reader."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from tests.factories import build_trainer_sdist
from tests.remote import upload_dir, upload_file, wait_job, wait_operation

# Each replica says who it is, warns once and fails loudly once (stderr, Python's logging).
TRAINER = """
import json, logging, os, time
logging.basicConfig(level=logging.INFO)
task = json.loads(os.environ["TF_CONFIG"])["task"]
name = f"{task['type']}-{task['index']}"
for step in range(3):
    print(f"{name} step {step} loss {1.0 / (step + 1):.3f}", flush=True)
    time.sleep(0.05)
logging.warning("%s is warming up", name)
logging.error("%s saw a NaN in %s", name, os.environ["CLOUD_ML_JOB_ID"])
"""


def run_job(server: Any, project: str, job_id: str, workdir: Path, **training: Any) -> None:
    """Submit a job of TRAINER (master, plus workers when asked) and wait for its end.

    The package names the job, so its environment is built for it (not found in the cache
    an earlier test filled) and pip's lines land in the job's service log every time.
    """
    sdist = build_trainer_sdist(workdir, f"{TRAINER}\n# {job_id}\n")
    uri = upload_file(
        server.url, sdist, "logging-tests", f"{job_id}/trainer.tar.gz", headers=server.headers()
    )
    body = {
        "jobId": job_id,
        "trainingInput": {
            "packageUris": [uri],
            "pythonModule": "trainer.task",
            "region": "us-central1",
            **training,
        },
    }
    created = httpx.post(
        f"{server.url}/v1/projects/{project}/jobs", json=body, headers=server.headers(), timeout=60
    )
    assert created.status_code == 200, created.text
    job = wait_job(server.client(), f"projects/{project}/jobs/{job_id}", timeout=240)
    assert job["state"] == "SUCCEEDED", job


def sklearn_dir(directory: Path) -> Path:
    """A model fitted on named columns: predicting on plain rows makes scikit-learn warn on
    the node's stderr, so the node's console log has a line of its own."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(100, 2)), columns=["a", "b"])
    labels = (features["a"] > 0).astype(int)
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression().fit(features, labels), directory / "model.joblib")
    return directory


def deploy_logged_model(server: Any, project: str, model: str, workdir: Path) -> None:
    """A model with every kind of prediction logging, one version, and three predictions."""
    ml = server.client()
    ml.projects().models().create(
        parent=f"projects/{project}",
        body={
            "name": model,
            "onlinePredictionLogging": True,
            "onlinePredictionConsoleLogging": True,
        },
    ).execute()
    uri = upload_dir(
        server.url, sklearn_dir(workdir), "logging-tests", f"{model}/v1", headers=server.headers()
    )
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(
            parent=f"projects/{project}/models/{model}",
            body={
                "name": "v1",
                "deploymentUri": uri,
                "requestLoggingConfig": {
                    "samplingPercentage": 1,
                    "bigqueryTableName": f"{project.replace('-', '_')}.logs.requests",
                },
            },
        )
        .execute()
    )
    done = wait_operation(ml, operation["name"], timeout=240)
    assert "error" not in done, done
    with httpx.Client(timeout=60) as http:
        for value in (1.0, -1.0, 2.0):
            answer = http.post(
                f"{server.url}/v1/projects/{project}/models/{model}/versions/v1:predict",
                content=json.dumps({"instances": [[value, 0.5]]}).encode(),
                headers={**server.headers(), "Content-Type": "application/json"},
            )
            assert answer.status_code == 200, answer.text


def list_entries(
    server: Any, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v2/entries:list",
        json=body,
        headers=headers or server.headers(),
        timeout=120,
    )


def read_all(
    server: Any, body: dict[str, Any], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every entry, page after page."""
    found: list[dict[str, Any]] = []
    body = dict(body)
    while True:
        response = list_entries(server, body, headers)
        assert response.status_code == 200, response.text
        page = response.json()
        found += page.get("entries", [])
        if "nextPageToken" not in page:
            return found
        body["pageToken"] = page["nextPageToken"]


def wait_for_entries(
    server: Any, body: dict[str, Any], count: int, timeout: float = 60.0
) -> list[dict[str, Any]]:
    """Poll until at least `count` entries match (node output reaches its file a bit late)."""
    deadline = time.monotonic() + timeout
    while True:
        found = read_all(server, body)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
