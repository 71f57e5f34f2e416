"""A server crash or restart never leaves a job RUNNING or a version CREATING."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.conftest import RunningServer
from tests.factories import build_trainer_sdist, sklearn_model_dir
from tests.remote import unique, upload_dir, upload_file, wait_job, wait_operation

P = "projects/restarts"

STEADY_TRAINER = """
import os, pathlib, sys, time
pid_file = pathlib.Path(PID_FILE)
pid_file.parent.mkdir(parents=True, exist_ok=True)
pid_file.write_text(str(os.getpid()))
time.sleep(SECONDS)
print("finished after sleeping", flush=True)
sys.exit(EXIT_CODE)
"""


def pid_file_of(server: Any) -> Path:
    """Where a sleeper writes its pid: in the server's storage, which replicas may write."""
    return server.home / "storage" / "restart-pids" / unique("pid")


def submit_sleeper(
    ml: Any, server: Any, tmp_path: Path, pid_file: Path, seconds: float, exit_code: int = 0
) -> str:
    code = (
        STEADY_TRAINER.replace("PID_FILE", repr(str(pid_file)))
        .replace("SECONDS", repr(seconds))
        .replace("EXIT_CODE", repr(exit_code))
    )
    sdist = build_trainer_sdist(tmp_path, code)
    job_id = unique("sleeper")
    package = upload_file(
        server.url, sdist, "staging", f"{job_id}/{sdist.name}", headers=server.headers()
    )
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
    ml = server.client()
    pid_file = pid_file_of(server)
    name = submit_sleeper(ml, server, tmp_path, pid_file, 600)
    server.kill()
    psutil.Process(int(pid_file.read_text())).kill()  # the replica dies while the server is down
    server.restart()
    ml = server.client()  # connections to the old process are gone
    job = wait_job(ml, name, timeout=60)
    assert job["state"] == "FAILED"
    assert job["errorMessage"].startswith("The replica master 0 was ended by SIGKILL."), job


@pytest.mark.slow
@pytest.mark.parametrize(
    ("exit_code", "state", "message"),
    [
        (0, "SUCCEEDED", None),
        (3, "FAILED", "The replica master 0 exited with a non-zero status of 3."),
    ],
)
def test_a_job_that_ended_while_the_server_was_down_keeps_its_outcome(
    start_server: Any, tmp_path: Path, exit_code: int, state: str, message: str | None
) -> None:
    server = start_server()
    ml = server.client()
    pid_file = pid_file_of(server)
    name = submit_sleeper(ml, server, tmp_path, pid_file, 2, exit_code)
    server.kill()
    replica = psutil.Process(int(pid_file.read_text()))
    replica.wait(timeout=60)  # it finishes while no server watches
    server.restart()
    ml = server.client()  # connections to the old process are gone
    job = wait_job(ml, name, timeout=60)
    assert job["state"] == state, job
    assert job.get("errorMessage", "").startswith(message or ""), job


@pytest.mark.slow
def test_a_server_on_a_copy_of_the_home_leaves_the_originals_replicas_alone(
    start_server: Any, tmp_path: Path
) -> None:
    original = start_server()
    ml = original.client()
    pid_file = pid_file_of(original)
    name = submit_sleeper(ml, original, tmp_path, pid_file, 20)
    replica = psutil.Process(int(pid_file.read_text()))
    original.kill()
    copy = RunningServer(home=tmp_path / "copied-home")
    shutil.copytree(original.home, copy.home, symlinks=True)
    copy.start()
    try:
        job = wait_job(copy.client(), name, timeout=60)
        assert job["state"] == "FAILED"
        assert "another Cairn home" in job["errorMessage"], job
    finally:
        copy.stop()
    assert replica.is_running()  # neither adopted nor ended by the copy's server

    original.restart()
    job = wait_job(original.client(), name, timeout=60)
    assert job["state"] == "SUCCEEDED", job


@pytest.mark.slow
def test_crash_with_live_replica_readopts_it(start_server: Any, tmp_path: Path) -> None:
    server = start_server()
    ml = server.client()
    name = submit_sleeper(ml, server, tmp_path, pid_file_of(server), 4)
    server.kill()
    server.restart()
    ml = server.client()  # connections to the old process are gone
    job = wait_job(ml, name, timeout=60)
    assert job["state"] == "SUCCEEDED", job


@pytest.mark.slow
def test_restart_reloads_ready_versions(start_server: Any, tmp_path: Path) -> None:
    server = start_server()
    ml = server.client()
    model = unique("survivor")
    ml.projects().models().create(parent=P, body={"name": model}).execute()
    uri = upload_dir(
        server.url,
        sklearn_model_dir(tmp_path / "m"),
        "restart-models",
        model,
        headers=server.headers(),
    )
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
    ml = server.client()  # connections to the old process are gone
    result = (
        ml.projects()
        .predict(name=f"{P}/models/{model}", body={"instances": [[3.0, 3.0, 0.0, 0.0]]})
        .execute()
    )
    assert result == {"predictions": [1]}


@pytest.mark.slow
def test_graceful_stop_fails_running_jobs(start_server: Any, tmp_path: Path) -> None:
    server = start_server()
    ml = server.client()
    pid_file = pid_file_of(server)
    name = submit_sleeper(ml, server, tmp_path, pid_file, 600)
    pid = int(pid_file.read_text())
    server.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    server.restart()
    ml = server.client()  # connections to the old process are gone
    job = ml.projects().jobs().get(name=name).execute()
    assert job["state"] == "FAILED"
