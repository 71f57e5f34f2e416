"""Custom containers (masterConfig.imageUri) run with Podman, through a real server.

The image is built locally (tests/training/container_image.py): no registry is reachable.
Every test but the refusal at create needs a Podman that can run containers here, and is
skipped, saying why, only when it cannot.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
from googleapiclient.errors import HttpError
from tests.conftest import RunningServer
from tests.remote import unique, wait_job
from tests.training.container_image import image_python, usable_podman

P = "projects/containers"
BUCKET = "container-out"


@pytest.fixture(scope="module")
def podman() -> tuple[str, dict[str, str]]:
    found = usable_podman()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="module")
def container_server(
    podman: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    _, extra_env = podman
    server = RunningServer(
        home=tmp_path_factory.mktemp("cairn-containers"),
        extra_env={**extra_env, "CAIRN_CONTAINER_ENGINE": "podman"},
    )
    server.start()
    yield server
    server.stop()


def _job(image: str, job_id: str, **training: Any) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "trainingInput": {
            "region": "us-central1",
            "masterConfig": {"imageUri": image},
            **training,
        },
    }


def _read_object(server: RunningServer, name: str) -> bytes:
    response = httpx.get(
        f"{server.url}/storage/v1/b/{BUCKET}/o/{name.replace('/', '%2F')}",
        params={"alt": "media"},
        headers=server.headers(),
        timeout=30,
    )
    response.raise_for_status()
    return response.content


def _containers_of(job_id: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [
            "podman",
            "ps",
            "-a",
            "--filter",
            f"label=io.cairn.job={job_id}",
            "--format",
            "{{.Names}}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    return done.stdout.split()


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not true after {timeout}s")
        time.sleep(0.2)


@pytest.mark.slow
def test_a_container_cluster_gets_tf_config_job_dir_credential_and_the_cluster_ports(
    podman: tuple[str, dict[str, str]], container_server: RunningServer
) -> None:
    image, _ = podman
    ml = container_server.client()
    job_id = unique("cluster")
    body = _job(
        image,
        job_id,
        scaleTier="CUSTOM",
        masterType="n1-standard-4",
        workerType="n1-standard-4",
        workerCount="1",
        args=["--mode", "cluster"],
        jobDir=f"gs://{BUCKET}/{job_id}",
    )
    ml.projects().jobs().create(parent=P, body=body).execute()
    job = wait_job(ml, f"{P}/jobs/{job_id}", timeout=240)
    assert job["state"] == "SUCCEEDED", job

    master = json.loads(_read_object(container_server, f"{job_id}/master-0.json"))
    worker = json.loads(_read_object(container_server, f"{job_id}/worker-0.json"))
    # AI Platform's custom containers call the primary `master` in TF_CONFIG.
    assert master["tf_config"]["task"] == {"type": "master", "index": 0}
    assert worker["tf_config"]["task"] == {"type": "worker", "index": 0}
    assert set(master["tf_config"]["cluster"]) == {"master", "worker"}
    assert master["tf_config"]["job"]["masterConfig"]["imageUri"] == image
    assert master["heard"] == "hello from worker-0"  # over the master's cluster port
    assert master["job_id"] == job_id
    # args after the entrypoint, then --job-dir: the bucket's path, mounted at that path.
    job_dir = container_server.home / "storage" / BUCKET / job_id
    assert master["argv"] == ["--mode", "cluster", "--job-dir", str(job_dir.resolve())]
    assert master["credential_type"] is not None  # the job's credential, mounted read-only
    assert master["uid"] != 0  # the job's own uid, not root
    assert master["cwd"] == master["home"]
    assert "/.venv/" not in (master["path"] or "")  # the image's PATH, not Cairn's venv
    assert not _containers_of(job_id, podman[1])  # removed once they ended


@pytest.mark.slow
def test_container_command_and_args_replace_the_entrypoint(
    podman: tuple[str, dict[str, str]], container_server: RunningServer
) -> None:
    image, _ = podman
    ml = container_server.client()
    job_id = unique("command")
    # The entrypoint is replaced by a shell-less one-liner; containerArgs are its arguments.
    body = _job(image, job_id)
    python = image_python()
    body["trainingInput"]["masterConfig"].update(
        {
            "containerCommand": [python, "-c"],
            "containerArgs": ["import sys; print('custom', sys.argv[1:]); sys.exit(7)", "x"],
        }
    )
    ml.projects().jobs().create(parent=P, body=body).execute()
    job = wait_job(ml, f"{P}/jobs/{job_id}", timeout=180)
    assert job["state"] == "FAILED", job
    assert "non-zero status of 7" in job["errorMessage"], job
    log_path = container_server.home / "jobs" / "containers" / job_id / "logs"
    text = (log_path / "master-replica-0.log").read_text()
    assert "custom ['x']" in text, text


@pytest.mark.slow
def test_a_tuning_job_runs_its_trials_in_containers_and_reads_their_metrics(
    podman: tuple[str, dict[str, str]], container_server: RunningServer
) -> None:
    image, _ = podman
    ml = container_server.client()
    job_id = unique("tuning")
    tuning = {
        "goal": "MAXIMIZE",
        "hyperparameterMetricTag": "score",
        "maxTrials": 2,
        "maxParallelTrials": 1,
        "algorithm": "GRID_SEARCH",
        "params": [{"parameterName": "lr", "type": "DISCRETE", "discreteValues": [0.01, 0.1]}],
    }
    body = _job(image, job_id, args=["--mode", "tune"], hyperparameters=tuning)
    ml.projects().jobs().create(parent=P, body=body).execute()
    job = wait_job(ml, f"{P}/jobs/{job_id}", timeout=240)
    assert job["state"] == "SUCCEEDED", job
    trials = job["trainingOutput"]["trials"]
    values = sorted(t["finalMetric"]["objectiveValue"] for t in trials)
    assert values == pytest.approx([0.1, 1.0]), trials


@pytest.mark.slow
def test_a_failing_container_fails_the_job_with_its_stderr(
    podman: tuple[str, dict[str, str]], container_server: RunningServer
) -> None:
    image, _ = podman
    ml = container_server.client()
    job_id = unique("failing")
    body = _job(image, job_id, args=["--mode", "fail"])
    ml.projects().jobs().create(parent=P, body=body).execute()
    job = wait_job(ml, f"{P}/jobs/{job_id}", timeout=180)
    assert job["state"] == "FAILED", job
    assert job["errorMessage"].startswith(
        "The replica master 0 exited with a non-zero status of 3."
    ), job
    assert "training blew up: the input has no rows" in job["errorMessage"], job


@pytest.mark.slow
def test_an_image_missing_here_fails_the_job_saying_so(
    container_server: RunningServer,
) -> None:
    ml = container_server.client()
    job_id = unique("missing")
    body = _job("localhost/cairn-no-such-image:1", job_id)
    ml.projects().jobs().create(parent=P, body=body).execute()
    job = wait_job(ml, f"{P}/jobs/{job_id}", timeout=180)
    assert job["state"] == "FAILED", job
    assert (
        "the image localhost/cairn-no-such-image:1 is not on this machine" in (job["errorMessage"])
    ), job
    assert "podman build, podman load or podman import" in job["errorMessage"], job


@pytest.mark.slow
def test_cancel_stops_and_removes_the_container(
    podman: tuple[str, dict[str, str]], container_server: RunningServer
) -> None:
    image, extra_env = podman
    ml = container_server.client()
    job_id = unique("cancel")
    ml.projects().jobs().create(
        parent=P, body=_job(image, job_id, args=["--mode", "sleep"])
    ).execute()
    name = f"{P}/jobs/{job_id}"
    wait_job(ml, name, states=("RUNNING",), timeout=180)
    _wait_for(lambda: bool(_containers_of(job_id, extra_env)), 120, "the container runs")
    log = container_server.home / "jobs" / "containers" / job_id / "logs" / "master-replica-0.log"
    _wait_for(lambda: log.exists() and "sleeping" in log.read_text(), 120, "the trainer sleeps")
    uid = _uid_of_sleeper()
    ml.projects().jobs().cancel(name=name, body={}).execute()
    job = wait_job(ml, name, timeout=120)
    assert job["state"] == "CANCELLED", job
    _wait_for(lambda: not _containers_of(job_id, extra_env), 60, "the container is gone")
    assert uid is None or not _processes_of(uid), "the trainer outlived the cancel"


def _uid_of_sleeper() -> int | None:
    for process in psutil.process_iter(["cmdline", "uids"]):
        cmdline = process.info["cmdline"] or []
        if "/trainer/task.py" in cmdline and "sleep" in cmdline:
            return int(process.info["uids"].real)
    return None


def _processes_of(uid: int) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["uids"]) if p.info["uids"].real == uid]


@pytest.mark.slow
def test_a_container_replica_is_re_adopted_after_a_server_crash(
    podman: tuple[str, dict[str, str]], start_server: Any
) -> None:
    image, extra_env = podman
    server = start_server(extra_env={**extra_env, "CAIRN_CONTAINER_ENGINE": "podman"})
    ml = server.client()
    job_id = unique("adopted")
    body = _job(image, job_id, args=["--mode", "wait-for"], jobDir=f"gs://{BUCKET}/{job_id}")
    ml.projects().jobs().create(parent=P, body=body).execute()
    name = f"{P}/jobs/{job_id}"
    wait_job(ml, name, states=("RUNNING",), timeout=180)
    log = server.home / "jobs" / "containers" / job_id / "logs" / "master-replica-0.log"
    _wait_for(lambda: log.exists() and "waiting for" in log.read_text(), 120, "the trainer waits")
    server.kill()
    assert _containers_of(job_id, extra_env), "the container died with the server"
    server.restart()
    ml = server.client()
    (server.home / "storage" / BUCKET / job_id / "go").write_text("")
    job = wait_job(ml, name, timeout=120)
    assert job["state"] == "SUCCEEDED", job
    assert "saw the flag" in log.read_text()
    _wait_for(lambda: not _containers_of(job_id, extra_env), 60, "the container is gone")


def test_without_an_engine_a_container_job_is_refused_at_create(start_server: Any) -> None:
    server = start_server(extra_env={"CAIRN_CONTAINER_ENGINE": "/nonexistent/podman"})
    ml = server.client()
    job_id = unique("no_engine")
    with pytest.raises(HttpError) as refused:
        ml.projects().jobs().create(parent=P, body=_job("localhost/x:1", job_id)).execute()
    assert refused.value.resp.status == 400
    error = json.loads(refused.value.content)["error"]
    assert error["status"] == "FAILED_PRECONDITION"
    assert "/nonexistent/podman" in error["message"]
    assert "CAIRN_CONTAINER_ENGINE" in error["message"]
    # Nothing was queued under that id.
    with pytest.raises(HttpError) as missing:
        ml.projects().jobs().get(name=f"{P}/jobs/{job_id}").execute()
    assert missing.value.resp.status == 404

    # The container fields are checked first, with AI Platform's rules (INVALID_ARGUMENT).
    body = _job("localhost/x:1", unique("both"), args=["--a"])
    body["trainingInput"]["masterConfig"]["containerArgs"] = ["--b"]
    with pytest.raises(HttpError) as both:
        ml.projects().jobs().create(parent=P, body=body).execute()
    assert both.value.resp.status == 400
    assert "containerArgs" in json.loads(both.value.content)["error"]["message"]
