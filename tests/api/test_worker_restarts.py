"""On a real server: a worker killed mid-run is restarted and the job succeeds; restarts are
bounded (CAIRN_MAX_REPLICA_RESTARTS); logs filter by replica (REST `taskName`, CLI
`--task-name`) and come in time order; `jobs describe` shows each replica's state."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from tests.client.cli_runner import invoke
from tests.factories import build_trainer_sdist
from tests.remote import unique, upload_file, wait_job
from tests.training.restart_trainer import TRAINER

PROJECT = "restarting"
P = f"projects/{PROJECT}"


def submit(server: Any, tmp_path: Path, job_id: str, *args: str) -> str:
    """A CUSTOM cluster (chief + one worker) of the checkpointing trainer; its job dir."""
    sdist = build_trainer_sdist(tmp_path, TRAINER)
    package = upload_file(
        server.url, sdist, "staging", f"{job_id}/{sdist.name}", headers=server.headers()
    )
    job_dir = f"gs://staging/{job_id}/out"
    server.client().projects().jobs().create(
        parent=P,
        body={
            "jobId": job_id,
            "trainingInput": {
                "packageUris": [package],
                "pythonModule": "trainer.task",
                "region": "us-central1",
                "scaleTier": "CUSTOM",
                "masterType": "n1-standard-4",
                "workerType": "n1-standard-4",
                "workerCount": "1",
                "jobDir": job_dir,
                "args": list(args),
            },
        },
    ).execute()
    return job_dir


def local(server: Any, uri: str) -> Path:
    return server.home / "storage" / uri[len("gs://") :]


def read_logs(server: Any, job_id: str, **params: str) -> list[dict[str, Any]]:
    """Every line the logs route hands out, batch after batch until one comes back empty."""
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        response = httpx.get(
            f"{server.url}/cairn/v1/{P}/jobs/{job_id}/logs",
            params={**params, **({"cursor": cursor} if cursor else {})},
            headers=server.headers(),
            timeout=30,
        )
        response.raise_for_status()
        batch = response.json()
        entries += batch["entries"]
        cursor = batch["cursor"]
        if not batch["entries"]:
            return entries


def test_a_worker_killed_mid_run_is_restarted_and_the_job_succeeds(
    cairn_server: Any, tmp_path: Path
) -> None:
    job_id = unique("killed_worker")
    job_dir = local(cairn_server, submit(cairn_server, tmp_path, job_id, "--wait-to-be-killed"))
    pid_file = job_dir / "pid-worker-0"
    deadline = time.monotonic() + 120
    while not pid_file.exists():
        assert time.monotonic() < deadline, "the worker never reached step 2"
        time.sleep(0.1)
    psutil.Process(int(pid_file.read_text())).kill()

    job = wait_job(cairn_server.client(), f"{P}/jobs/{job_id}", timeout=120)
    assert job["state"] == "SUCCEEDED", job
    assert job["cairnReplicas"] == [
        {"taskName": "master-replica-0", "state": "SUCCEEDED", "exitCode": 0},
        {"taskName": "worker-replica-0", "state": "SUCCEEDED", "restartCount": 1, "exitCode": 0},
    ]

    # REST: the service's lines alone, then the worker's alone.
    service = [e["text"] for e in read_logs(cairn_server, job_id, taskName="service")]
    assert (
        "Replica worker-replica-0 was ended by SIGKILL; restarting it (restart 1 of 5)." in service
    )
    worker = read_logs(cairn_server, job_id, taskName="worker-replica-0")
    assert {e["taskName"] for e in worker} == {"worker-replica-0"}
    texts = [e["text"] for e in worker]
    assert texts[:3] == ["worker-0 starting", "worker-0 step 1", "worker-0 step 2"]
    assert texts[3:] == [
        "worker-0 resuming from the checkpoint of step 2",
        "worker-0 step 3",
        "worker-0 step 4",
        "worker-0 step 5",
        "worker-0 done",
    ]
    # A name no replica has is a typo, answered with the names there are.
    typo = httpx.get(
        f"{cairn_server.url}/cairn/v1/{P}/jobs/{job_id}/logs",
        params={"taskName": "master-replica-1"},
        headers=cairn_server.headers(),
        timeout=30,
    )
    assert typo.status_code == 400
    assert "master-replica-0, worker-replica-0 and service" in typo.json()["error"]["message"]
    # Everything together: in time order, the restart line between the two runs.
    together = read_logs(cairn_server, job_id)
    moments = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in together]
    assert moments == sorted(moments)
    lines = [f"{e['taskName']}: {e['text']}" for e in together]
    assert (
        lines.index("worker-replica-0: worker-0 step 2")
        < lines.index(
            "service: Replica worker-replica-0 was ended by SIGKILL; restarting it "
            "(restart 1 of 5)."
        )
        < lines.index("worker-replica-0: worker-0 resuming from the checkpoint of step 2")
    )

    # The CLI: gcloud's --task-name, and describe with the replicas' states.
    streamed = invoke(
        cairn_server.url,
        "jobs",
        "stream-logs",
        job_id,
        "--task-name",
        "worker-replica-0",
        "--polling-interval",
        "0.1",
        project=PROJECT,
    )
    assert streamed.exit_code == 0, streamed.output
    assert streamed.stdout.splitlines() == [f"worker-replica-0\t{text}" for text in texts]
    described = invoke(cairn_server.url, "jobs", "describe", job_id, project=PROJECT)
    assert described.exit_code == 0, described.output
    replicas = yaml.safe_load(described.stdout)["cairnReplicas"]
    assert {r["taskName"]: r.get("restartCount", 0) for r in replicas} == {
        "master-replica-0": 0,
        "worker-replica-0": 1,
    }
    summary = invoke(cairn_server.url, "jobs", "describe", job_id, "--summarize", project=PROJECT)
    assert "worker-replica-0  SUCCEEDED  1         0" in summary.stdout


def test_a_worker_that_keeps_crashing_fails_the_job_once_its_restarts_are_spent(
    start_server: Any, tmp_path: Path
) -> None:
    server = start_server(extra_env={"CAIRN_MAX_REPLICA_RESTARTS": "1"})
    job_id = unique("crashing_worker")
    submit(server, tmp_path, job_id, "--always-crash")

    job = wait_job(server.client(), f"{P}/jobs/{job_id}", timeout=120)
    assert job["state"] == "FAILED", job
    assert job["errorMessage"].startswith(
        "The replica worker 0 exited with a non-zero status of 7. It had been restarted 1 "
        "times, the most Cairn allows. The last lines of its stderr:\nworker-0 cannot start"
    ), job
    states = {r["taskName"]: r for r in job["cairnReplicas"]}
    assert states["worker-replica-0"] == {
        "taskName": "worker-replica-0",
        "state": "FAILED",
        "restartCount": 1,
        "exitCode": 7,
    }
    assert states["master-replica-0"]["state"] == "STOPPED"
    service = [e["text"] for e in read_logs(server, job_id, taskName="service")]
    assert [line for line in service if "restarting" in line] == [
        "Replica worker-replica-0 exited with status 7; restarting it (restart 1 of 1)."
    ]
