"""Training jobs through google-api-python-client: real trainer packages in real processes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from googleapiclient.errors import HttpError
from tests.factories import build_trainer_sdist
from tests.remote import unique, upload_file, wait_job

PROJECT = "projects/jobs_project"

SUCCEEDING_TRAINER = """
import argparse, json, os, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--job-dir")
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
out = pathlib.Path(args.job_dir)
out.mkdir(parents=True, exist_ok=True)
(out / "seen.json").write_text(json.dumps({
    "epochs": args.epochs,
    "tf_config": json.loads(os.environ["TF_CONFIG"]),
    "job_id": os.environ.get("CLOUD_ML_JOB_ID"),
}))
print("training done", flush=True)
"""

FAILING_TRAINER = """
import sys
print("about to fail", flush=True)
sys.stderr.write("ValueError: the learning rate must be positive\\n")
sys.exit(3)
"""

SLEEPING_TRAINER = """
import subprocess, sys, time, os, pathlib
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
pids_file = pathlib.Path(os.environ["PIDS_FILE"])
pids_file.parent.mkdir(parents=True, exist_ok=True)
pids_file.write_text(f"{os.getpid()} {child.pid}")
print("sleeping", flush=True)
time.sleep(600)
"""


def submit(
    ml: Any, server: Any, tmp_path: Path, code: str, **training: Any
) -> tuple[str, dict[str, Any]]:
    job_id = unique("job")
    sdist = build_trainer_sdist(tmp_path, code)
    package = upload_file(
        server.url, sdist, "staging", f"{job_id}/{sdist.name}", headers=server.headers()
    )
    body = {
        "jobId": job_id,
        "labels": {"owner": "tests"},
        "trainingInput": {
            "scaleTier": "BASIC",
            "packageUris": [package],
            "pythonModule": "trainer.task",
            "region": "us-central1",
            **training,
        },
    }
    created = ml.projects().jobs().create(parent=PROJECT, body=body).execute()
    return job_id, created


def test_job_runs_trainer_with_runtime_contract(ml: Any, cairn_server: Any, tmp_path: Path) -> None:
    job_id, created = submit(
        ml,
        cairn_server,
        tmp_path,
        SUCCEEDING_TRAINER,
        args=["--epochs", "3"],
        jobDir="gs://outputs/run1",
    )
    assert created["jobId"] == job_id
    assert created["state"] in ("QUEUED", "PREPARING", "RUNNING")
    assert created["createTime"].endswith("Z")
    job = wait_job(ml, f"{PROJECT}/jobs/{job_id}")
    assert job["state"] == "SUCCEEDED", job.get("errorMessage")
    assert job["startTime"] <= job["endTime"]
    assert job["trainingInput"]["jobDir"] == "gs://outputs/run1"

    seen = json.loads(
        (cairn_server.home / "storage" / "outputs" / "run1" / "seen.json").read_text()
    )
    assert seen["epochs"] == 3
    assert seen["job_id"] == job_id
    assert seen["tf_config"]["environment"] == "cloud"
    assert seen["tf_config"]["task"]["index"] == 0
    assert seen["tf_config"]["task"]["type"] in ("master", "chief")

    logs = httpx.get(
        f"{cairn_server.url}/cairn/v1/{PROJECT}/jobs/{job_id}/logs", headers=cairn_server.headers()
    ).json()
    assert any("training done" in entry["text"] for entry in logs["entries"])


def test_failing_trainer_reports_its_error(ml: Any, cairn_server: Any, tmp_path: Path) -> None:
    job_id, _ = submit(ml, cairn_server, tmp_path, FAILING_TRAINER)
    job = wait_job(ml, f"{PROJECT}/jobs/{job_id}")
    assert job["state"] == "FAILED"
    assert "the learning rate must be positive" in job["errorMessage"]


def test_cancel_ends_the_whole_process_tree(ml: Any, cairn_server: Any, tmp_path: Path) -> None:
    # In the server's storage: replicas may run as a user that cannot write tmp_path.
    pids_file = cairn_server.home / "storage" / "job-pids" / unique("pids")
    job_id, _ = submit(
        ml,
        cairn_server,
        tmp_path,
        SLEEPING_TRAINER.replace('os.environ["PIDS_FILE"]', repr(str(pids_file))),
    )
    name = f"{PROJECT}/jobs/{job_id}"
    wait_job(ml, name, states=("RUNNING",))
    deadline = time.monotonic() + 60
    while not pids_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = [int(p) for p in pids_file.read_text().split()]
    assert ml.projects().jobs().cancel(name=name, body={}).execute() == {}
    job = wait_job(ml, name)
    assert job["state"] == "CANCELLED"
    deadline = time.monotonic() + 30
    while any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids
    ):
        assert time.monotonic() < deadline, "trainer processes outlived the cancel"
        time.sleep(0.2)
    with pytest.raises(HttpError) as again:
        ml.projects().jobs().cancel(name=name, body={}).execute()
    assert again.value.resp.status == 400


def test_list_filter_patch_and_duplicate(ml: Any, cairn_server: Any, tmp_path: Path) -> None:
    job_id, created = submit(ml, cairn_server, tmp_path, FAILING_TRAINER)
    name = f"{PROJECT}/jobs/{job_id}"
    wait_job(ml, name)

    failed = (
        ml.projects()
        .jobs()
        .list(parent=PROJECT, filter=f"jobId:{job_id[:8]}* AND state:FAILED")
        .execute()
    )
    assert job_id in [j["jobId"] for j in failed["jobs"]]
    none = (
        ml.projects()
        .jobs()
        .list(parent=PROJECT, filter=f"jobId:{job_id} AND state:SUCCEEDED")
        .execute()
    )
    assert none == {}
    by_label = ml.projects().jobs().list(parent=PROJECT, filter="labels.owner=tests").execute()
    assert job_id in [j["jobId"] for j in by_label["jobs"]]

    current = ml.projects().jobs().get(name=name).execute()
    patched = (
        ml.projects()
        .jobs()
        .patch(
            name=name,
            body={"labels": {"owner": "tests", "stage": "review"}, "etag": current["etag"]},
            updateMask="labels",
        )
        .execute()
    )
    assert patched["labels"] == {"owner": "tests", "stage": "review"}
    assert patched["etag"] != current["etag"]
    with pytest.raises(HttpError) as stale:
        ml.projects().jobs().patch(
            name=name, body={"labels": {}, "etag": current["etag"]}, updateMask="labels"
        ).execute()
    assert stale.value.resp.status == 409

    with pytest.raises(HttpError) as duplicate:
        ml.projects().jobs().create(parent=PROJECT, body={**created, "state": None}).execute()
    assert duplicate.value.resp.status == 409
