"""A server crash or restart never leaves a job RUNNING or a version CREATING."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.factories import build_trainer_sdist, sklearn_model_dir
from tests.remote import ml_client, unique, upload_dir, upload_file, wait_job, wait_operation

P = "projects/restarts"

STEADY_TRAINER = """
import os, pathlib, time
pathlib.Path(os.environ["CAIRN_TEST_PID_FILE"]).write_text(str(os.getpid()))
time.sleep(float(os.environ.get("CAIRN_TEST_SLEEP", "600")))
print("finished after sleeping", flush=True)
"""


def submit_sleeper(ml: Any, server: Any, tmp_path: Path, pid_file: Path, seconds: float) -> str:
    code = STEADY_TRAINER.replace('os.environ["CAIRN_TEST_PID_FILE"]', repr(str(pid_file))).replace(
        'float(os.environ.get("CAIRN_TEST_SLEEP", "600"))', repr(seconds)
    )
    sdist = build_trainer_sdist(tmp_path, code)
    job_id = unique("sleeper")
    package = upload_file(server.url, sdist, "staging", f"{job_id}/{sdist.name}")
    ml.projects().jobs().create(
        parent=P,
        body={
            "jobId": job_id,
            "trainingInput": {
                "packageUris": [package],
                "pythonModule": "trainer.task",
                "region": "us-central1",
            },
        },
    ).execute()
    name = f"{P}/jobs/{job_id}"
    wait_job(ml, name, states=("RUNNING",))
    deadline = time.monotonic() + 60
    while not pid_file.exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return name


@pytest.mark.slow
def test_crash_with_dead_replica_marks_job_failed(start_server: Any, tmp_path: Path) -> None:
    server = start_server()
    ml = ml_client(server.url)
    pid_file = tmp_path / "pid"
    name = submit_sleeper(ml, server, tmp_path, pid_file, 600)
    server.kill()
    psutil.Process(int(pid_file.read_text())).kill()  # the replica dies while the server is down
    server.restart()
    ml = ml_client(server.url)  # connections to the old process are gone
    job = ml.projects().jobs().get(name=name).execute()
    assert job["state"] == "FAILED"
    assert "restarted" in job["errorMessage"]


@pytest.mark.slow
def test_crash_with_live_replica_readopts_it(start_server: Any, tmp_path: Path) -> None:
    server = start_server()
    ml = ml_client(server.url)
    name = submit_sleeper(ml, server, tmp_path, tmp_path / "pid", 4)
    server.kill()
    server.restart()
    ml = ml_client(server.url)  # connections to the old process are gone
    job = wait_job(ml, name, timeout=60)
    assert job["state"] == "SUCCEEDED", job


@pytest.mark.slow
def test_restart_reloads_ready_versions(start_server: Any, tmp_path: Path) -> None:
    server = start_server()
    ml = ml_client(server.url)
    model = unique("survivor")
    ml.projects().models().create(parent=P, body={"name": model}).execute()
    uri = upload_dir(server.url, sklearn_model_dir(tmp_path / "m"), "restart-models", model)
    op = (
        ml.projects()
        .models()
        .versions()
        .create(parent=f"{P}/models/{model}", body={"name": "v1", "deploymentUri": uri})
        .execute()
    )
    assert "error" not in wait_operation(ml, op["name"])
    server.stop()
    server.restart()
    ml = ml_client(server.url)  # connections to the old process are gone
    result = (
        ml.projects()
        .predict(name=f"{P}/models/{model}", body={"instances": [[3.0, 3.0, 0.0, 0.0]]})
        .execute()
    )
    assert result == {"predictions": [1]}


@pytest.mark.slow
def test_graceful_stop_fails_running_jobs(start_server: Any, tmp_path: Path) -> None:
    server = start_server()
    ml = ml_client(server.url)
    pid_file = tmp_path / "pid"
    name = submit_sleeper(ml, server, tmp_path, pid_file, 600)
    pid = int(pid_file.read_text())
    server.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    server.restart()
    ml = ml_client(server.url)  # connections to the old process are gone
    job = ml.projects().jobs().get(name=name).execute()
    assert job["state"] == "FAILED"
