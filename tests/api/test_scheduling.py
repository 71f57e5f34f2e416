"""Capacity-aware scheduling on real servers (docs/scheduling.md): jobs wait in QUEUED with a
jobPosition until what they ask for is free, start in priority then submission order, end
when maxWaitTime passes; jobs that could never run are refused at create; GPUs are placed
per replica through CUDA_VISIBLE_DEVICES, here against a fake nvidia-smi with two GPUs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from googleapiclient.errors import HttpError
from tests.conftest import RunningServer
from tests.factories import build_trainer_sdist
from tests.remote import unique, upload_file, wait_job

pytestmark = pytest.mark.slow

PROJECT = "projects/scheduling"

# One trainer for every test (one cached environment): it records the GPUs it sees, then
# waits for its gate (a storage object the test uploads) and for the file --wait-for names.
TRAINER = """
import argparse, json, os, pathlib, time
parser = argparse.ArgumentParser()
parser.add_argument("--gate", default="")
parser.add_argument("--wait-for", default="")
parser.add_argument("--job-dir", default="")
args, _ = parser.parse_known_args()
task = json.loads(os.environ["TF_CONFIG"])["task"]
name = f"{task['type']}-{task['index']}"
if args.job_dir:
    out = pathlib.Path(args.job_dir)
    out.mkdir(parents=True, exist_ok=True)
    seen = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}
    (out / f"{name}.json").write_text(json.dumps(seen))
print("started", name, flush=True)
deadline = time.time() + 300
for path in (args.gate, args.wait_for):
    while path and not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.1)
print("done", name, flush=True)
"""

FAKE_NVIDIA_SMI = """#!/bin/sh
# nvidia-smi as it answers Cairn's query on a machine with two GPUs.
case "$*" in
  *--query-gpu=index,name,memory.total*)
    printf '0, NVIDIA A100-SXM4-40GB, 40960\\n1, NVIDIA A100-SXM4-40GB, 40960\\n' ;;
  *) exit 9 ;;
esac
"""


def server_with(tmp_path_factory: pytest.TempPathFactory, **env: str) -> RunningServer:
    server = RunningServer(home=tmp_path_factory.mktemp("scheduling-home"), extra_env=env)
    server.start()
    return server


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One core and 64 GB, AI Platform's sizes as they are: every BASIC job (4 vCPUs, 15 GB)
    needs the whole core, so two can never run together. No GPUs (whatever this machine
    has); maxWaitTime may be as short as 1s."""
    server = server_with(
        tmp_path_factory,
        CAIRN_CAPACITY_CPUS="1",
        CAIRN_CAPACITY_MEMORY_GB="64",
        CAIRN_MACHINE_SCALING="exact",
        CAIRN_CAPACITY_GPUS="0",
        CAIRN_MIN_MAX_WAIT_SECONDS="1",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def package(small: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_trainer_sdist(tmp_path_factory.mktemp("trainer"), TRAINER)


class Jobs:
    """Submits jobs to one server and opens their gates."""

    def __init__(self, server: RunningServer, sdist: Path) -> None:
        self.server = server
        self.ml = server.client()
        self.package = upload_file(
            server.url, sdist, "staging", f"{unique('pkg')}/{sdist.name}", server.headers()
        )

    def gate(self) -> str:
        return f"gs://gates/{unique('gate')}"

    def open(self, gate: str) -> None:
        bucket, name = gate.removeprefix("gs://").split("/", 1)
        marker = self.server.home.parent / f"{unique('open')}.txt"
        marker.write_text("open")
        upload_file(self.server.url, marker, bucket, name, self.server.headers())

    def body(self, job_id: str, gate: str = "", **training: Any) -> dict[str, Any]:
        args = ["--gate", gate] if gate else []
        return {
            "jobId": job_id,
            "trainingInput": {
                "scaleTier": "BASIC",
                "packageUris": [self.package],
                "pythonModule": "trainer.task",
                "region": "us-central1",
                "args": args + training.pop("args", []),
                **training,
            },
        }

    def submit(self, gate: str = "", **training: Any) -> tuple[str, dict[str, Any]]:
        job_id = unique("job")
        body = self.body(job_id, gate, **training)
        created = self.ml.projects().jobs().create(parent=PROJECT, body=body).execute()
        return f"{PROJECT}/jobs/{job_id}", created

    def get(self, name: str) -> dict[str, Any]:
        job: dict[str, Any] = self.ml.projects().jobs().get(name=name).execute()
        return job

    def wait(self, name: str, *states: str) -> dict[str, Any]:
        return wait_job(self.ml, name, timeout=300, **({"states": states} if states else {}))


@pytest.fixture(scope="module")
def jobs(small: RunningServer, package: Path) -> Jobs:
    return Jobs(small, package)


def test_a_job_waits_for_capacity_and_starts_when_the_running_one_ends(jobs: Jobs) -> None:
    first_gate = jobs.gate()
    first, _ = jobs.submit(first_gate)
    jobs.wait(first, "RUNNING")
    open_gate = jobs.gate()
    jobs.open(open_gate)
    second, created = jobs.submit(open_gate)
    assert created["state"] == "QUEUED", created
    assert created["jobPosition"] == "1"
    third, created = jobs.submit(open_gate)
    assert created["jobPosition"] == "2"
    jobs.ml.projects().jobs().cancel(name=second, body={}).execute()  # the head leaves
    assert jobs.get(second)["state"] == "CANCELLED"
    assert jobs.get(third)["jobPosition"] == "1"
    assert jobs.get(first)["state"] == "RUNNING"

    jobs.open(first_gate)
    ended = jobs.wait(first)
    assert ended["state"] == "SUCCEEDED", ended
    started = jobs.wait(third)
    assert started["state"] == "SUCCEEDED", started
    assert "jobPosition" not in started
    assert started["startTime"] >= ended["endTime"]


def test_higher_priority_starts_first_then_submission_order(jobs: Jobs) -> None:
    blocker_gate, urgent_gate, open_gate = jobs.gate(), jobs.gate(), jobs.gate()
    jobs.open(open_gate)
    blocker, _ = jobs.submit(blocker_gate)
    jobs.wait(blocker, "RUNNING")
    early, _ = jobs.submit(open_gate)
    late, _ = jobs.submit(open_gate)
    urgent, created = jobs.submit(urgent_gate, scheduling={"priority": 10})
    assert created["jobPosition"] == "1"
    assert [jobs.get(name)["jobPosition"] for name in (early, late)] == ["2", "3"]

    jobs.open(blocker_gate)
    jobs.wait(urgent, "RUNNING")
    assert jobs.get(early)["state"] == "QUEUED"
    assert jobs.get(early)["jobPosition"] == "1"
    jobs.open(urgent_gate)
    finished = [jobs.wait(name) for name in (urgent, early, late)]
    assert [job["state"] for job in finished] == ["SUCCEEDED"] * 3
    starts = [job["startTime"] for job in finished]
    assert starts == sorted(starts)


def test_max_wait_time_ends_a_job_that_waited_too_long(jobs: Jobs) -> None:
    gate = jobs.gate()
    running, _ = jobs.submit(gate)
    jobs.wait(running, "RUNNING")
    waiting, created = jobs.submit(gate, scheduling={"maxWaitTime": "2s"})
    assert created["state"] == "QUEUED"
    ended = jobs.wait(waiting)
    assert ended["state"] == "FAILED"
    assert "scheduling.maxWaitTime (2s)" in ended["errorMessage"]
    assert "It asks for 1 core, 15 GB and 0 GPUs" in ended["errorMessage"]
    assert "startTime" not in ended
    assert jobs.get(running)["state"] == "RUNNING"  # the running job is not touched
    jobs.open(gate)
    assert jobs.wait(running)["state"] == "SUCCEEDED"


def refused(jobs: Jobs, status: str, **training: Any) -> str:
    job_id = unique("refused")
    with pytest.raises(HttpError) as raised:
        jobs.ml.projects().jobs().create(
            parent=PROJECT, body=jobs.body(job_id, **training)
        ).execute()
    error = json.loads(raised.value.content)["error"]
    assert raised.value.resp.status == 400 and error["status"] == status, error
    # Refused, not accepted to fail later: no job was stored.
    with pytest.raises(HttpError) as missing:
        jobs.get(f"{PROJECT}/jobs/{job_id}")
    assert missing.value.resp.status == 404
    return str(error["message"])


T4 = {"acceleratorConfig": {"type": "NVIDIA_TESLA_T4", "count": "1"}}


def test_jobs_that_could_never_run_are_refused_at_create(jobs: Jobs) -> None:
    assert "Cloud TPU" in refused(jobs, "FAILED_PRECONDITION", scaleTier="BASIC_TPU")
    assert "this machine has no GPUs" in refused(jobs, "FAILED_PRECONDITION", scaleTier="BASIC_GPU")
    custom_gpu = {"scaleTier": "CUSTOM", "masterType": "n1-standard-8", "masterConfig": T4}
    assert "CAIRN_GPU_CPU_FALLBACK" in refused(jobs, "FAILED_PRECONDITION", **custom_gpu)
    too_many = {"scaleTier": "CUSTOM", "masterType": "n1-standard-4"}
    too_many.update(workerType="n1-standard-4", workerCount="64")
    assert "at most 64 replicas" in refused(jobs, "INVALID_ARGUMENT", **too_many)
    unknown = {"scaleTier": "CUSTOM", "masterType": "n1-standard-3"}
    assert "not a machine type" in refused(jobs, "INVALID_ARGUMENT", **unknown)
    short_wait = {"scheduling": {"maxWaitTime": "0.5s"}}
    assert "at least 1s" in refused(jobs, "INVALID_ARGUMENT", **short_wait)
    assert "between 0 and 1000" in refused(jobs, "INVALID_ARGUMENT", scheduling={"priority": 1001})


def test_the_default_least_max_wait_time_is_ai_platforms(cairn_server: Any) -> None:
    body = {
        "jobId": unique("short_wait"),
        "trainingInput": {
            "packageUris": ["gs://staging/trainer-0.1.tar.gz"],
            "pythonModule": "trainer.task",
            "region": "us-central1",
            "scheduling": {"maxWaitTime": "60s"},
        },
    }
    response = httpx.post(
        f"{cairn_server.url}/v1/{PROJECT}/jobs", json=body, headers=cairn_server.headers()
    )
    assert response.status_code == 400, response.text
    assert "at least 1800s" in response.json()["error"]["message"]


# ----- GPUs -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Two (fake) GPUs, 8 cores and 64 GB; machine types at a quarter of their size (an
    n1-standard-4 replica holds 1 core); GPU replicas that cannot have GPUs run on the CPU."""
    bin_dir = tmp_path_factory.mktemp("fake-bin")
    program = bin_dir / "nvidia-smi"
    program.write_text(FAKE_NVIDIA_SMI)
    program.chmod(0o755)
    server = server_with(
        tmp_path_factory,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        CAIRN_CAPACITY_CPUS="8",
        CAIRN_CAPACITY_MEMORY_GB="64",
        CAIRN_MACHINE_SCALING="0.25",
        CAIRN_GPU_CPU_FALLBACK="1",
    )
    yield server
    server.stop()


def seen(server: RunningServer, job_dir: str, replica: str) -> dict[str, Any]:
    path = server.home / "storage" / job_dir.removeprefix("gs://") / f"{replica}.json"
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"{replica} never wrote {path}"
        time.sleep(0.1)
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def test_each_gpu_replica_sees_only_its_own_gpu(gpu_server: RunningServer, package: Path) -> None:
    jobs = Jobs(gpu_server, package)
    job_dir = f"gs://outputs/{unique('gpus')}"
    gate = jobs.gate()
    two_gpus = {
        "scaleTier": "CUSTOM",
        "masterType": "n1-standard-4",
        "masterConfig": T4,
        "workerType": "n1-standard-4",
        "workerCount": "1",
        "workerConfig": T4,
        "jobDir": job_dir,
        # The master ends the job: it waits until the worker has written what it saw.
        "args": ["--wait-for", f"{job_dir}/worker-0.json"],
    }
    placed, _ = jobs.submit(gate, **two_gpus)
    jobs.wait(placed, "RUNNING")
    master = seen(gpu_server, job_dir, "chief-0")
    worker = seen(gpu_server, job_dir, "worker-0")
    assert {master["CUDA_VISIBLE_DEVICES"], worker["CUDA_VISIBLE_DEVICES"]} == {"0", "1"}
    assert master["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"

    # Both GPUs are held: a one-GPU job waits for them, though cores are free.
    single_dir = f"gs://outputs/{unique('one_gpu')}"
    single, created = jobs.submit(scaleTier="BASIC_GPU", jobDir=single_dir)
    assert created["state"] == "QUEUED" and created["jobPosition"] == "1", created
    # A job without GPUs starts behind it on cores it does not need, and sees no GPU.
    cpu_dir = f"gs://outputs/{unique('cpu')}"
    cpu_only, _ = jobs.submit(jobDir=cpu_dir)
    assert jobs.wait(cpu_only)["state"] == "SUCCEEDED"
    assert seen(gpu_server, cpu_dir, "chief-0")["CUDA_VISIBLE_DEVICES"] == ""
    assert jobs.get(single)["state"] == "QUEUED"

    jobs.open(gate)
    assert jobs.wait(placed)["state"] == "SUCCEEDED"
    assert jobs.wait(single)["state"] == "SUCCEEDED"
    assert seen(gpu_server, single_dir, "chief-0")["CUDA_VISIBLE_DEVICES"] in ("0", "1")


def test_the_cpu_fallback_runs_a_job_asking_for_more_gpus_than_there_are(
    gpu_server: RunningServer, package: Path
) -> None:
    jobs = Jobs(gpu_server, package)
    job_dir = f"gs://outputs/{unique('fallback')}"
    four_gpus = {"scaleTier": "CUSTOM", "masterType": "complex_model_m_gpu", "jobDir": job_dir}
    name, _ = jobs.submit(**four_gpus)
    assert jobs.wait(name)["state"] == "SUCCEEDED"
    assert seen(gpu_server, job_dir, "chief-0")["CUDA_VISIBLE_DEVICES"] == ""


def test_after_a_crash_a_re_adopted_job_still_holds_its_room(
    start_server: Any, package: Path
) -> None:
    server: RunningServer = start_server(
        extra_env={
            "CAIRN_CAPACITY_CPUS": "1",
            "CAIRN_MACHINE_SCALING": "exact",
            "CAIRN_CAPACITY_GPUS": "0",
        }
    )
    jobs = Jobs(server, package)
    gate, open_gate = jobs.gate(), jobs.gate()
    jobs.open(open_gate)
    running, _ = jobs.submit(gate)
    jobs.wait(running, "RUNNING")
    low, _ = jobs.submit(open_gate)
    high, _ = jobs.submit(open_gate, scheduling={"priority": 5})
    server.kill()  # a crash: the running trainer lives on
    server.restart()
    jobs.ml = server.client()
    assert jobs.get(running)["state"] == "RUNNING"
    assert [jobs.get(name).get("jobPosition") for name in (high, low)] == ["1", "2"]
    jobs.open(gate)
    finished = [jobs.wait(name) for name in (running, high, low)]
    assert [job["state"] for job in finished] == ["SUCCEEDED"] * 3
    starts = [job["startTime"] for job in finished]
    assert starts == sorted(starts)
