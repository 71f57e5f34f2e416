"""`cairn jobs ...`: requests sent, output printed, errors reported."""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from tests.client.cli_runner import invoke
from tests.client.fake_ml import FakeMl, fake_ml_fixture  # noqa: F401  (fixture)
from tests.remote import unique

P = "/v1/projects/proj"


def make_trainer(root: Path, code: str = "print('hello from the trainer')\n") -> Path:
    package = root / "trainer"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text(code)
    return package


def test_submit_builds_uploads_and_creates_the_job(fake_ml: FakeMl, tmp_path: Path) -> None:
    fake_ml.answer("POST", "/upload/storage/v1/b/stage/o", {"bucket": "stage"})
    fake_ml.answer("POST", f"{P}/jobs", {"jobId": "job1", "state": "QUEUED"})
    package = make_trainer(tmp_path / "src")
    result = invoke(
        fake_ml.url,
        "jobs", "submit", "training", "job1",
        "--package-path", str(package),
        "--module-name", "trainer.task",
        "--staging-bucket", "gs://stage",
        "--job-dir", "gs://out/job1",
        "--scale-tier", "custom",
        "--master-machine-type", "n1-standard-4",
        "--worker-machine-type", "n1-standard-4",
        "--worker-count", "2",
        "--labels", "team=ml,stage=dev",
        "--", "--epochs", "3",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    looked_up, upload, create = fake_ml.requests
    assert (looked_up.method, looked_up.path) == ("GET", f"{P}/jobs/job1")  # before upload
    with tarfile.open(fileobj=__import__("io").BytesIO(upload.body)) as archive:
        assert "trainer-0.0.0/trainer/task.py" in archive.getnames()
    digest = hashlib.sha256(upload.body).hexdigest()
    assert upload.query["name"] == f"job1/{digest}/trainer-0.0.0.tar.gz"
    assert create.json() == {
        "jobId": "job1",
        "labels": {"team": "ml", "stage": "dev"},
        "trainingInput": {
            "pythonModule": "trainer.task",
            "jobDir": "gs://out/job1",
            "region": "us-central1",
            "scaleTier": "CUSTOM",
            "masterType": "n1-standard-4",
            "workerType": "n1-standard-4",
            "workerCount": "2",
            "args": ["--epochs", "3"],
            "packageUris": [f"gs://stage/job1/{digest}/trainer-0.0.0.tar.gz"],
        },
    }
    assert yaml.safe_load(result.stdout) == {"jobId": "job1", "state": "QUEUED"}
    assert "$ cairn jobs describe job1" in result.stderr
    assert "$ cairn jobs stream-logs job1" in result.stderr


def test_config_file_is_loaded_and_flags_override_it(fake_ml: FakeMl, tmp_path: Path) -> None:
    fake_ml.answer("POST", f"{P}/jobs", {"jobId": "j2", "state": "QUEUED"})
    config = tmp_path / "job.yaml"
    config.write_text(
        "trainingInput:\n  scaleTier: BASIC\n  pythonModule: old.task\n"
        "  packageUris: [gs://b/p.tar.gz]\n  region: europe-west1\n"
    )
    result = invoke(
        fake_ml.url, "jobs", "submit", "training", "j2", "--config", str(config),
        "--module-name", "new.task", "--runtime-version", "2.11",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake_ml.requests[-1].json()["trainingInput"] == {
        "scaleTier": "BASIC",
        "pythonModule": "new.task",
        "packageUris": ["gs://b/p.tar.gz"],
        "region": "europe-west1",
        "runtimeVersion": "2.11",
    }


def test_submit_without_module_says_what_to_add(fake_ml: FakeMl) -> None:
    result = invoke(fake_ml.url, "jobs", "submit", "training", "j3", "--packages", "gs://b/p.tgz")
    assert result.exit_code == 1
    assert result.stderr.startswith("ERROR: (cairn.jobs.submit.training) argument --module-name: ")
    assert "--module-name trainer.task" in result.stderr
    assert fake_ml.requests == []


def test_local_packages_need_a_staging_place(fake_ml: FakeMl, tmp_path: Path) -> None:
    package = make_trainer(tmp_path)
    result = invoke(
        fake_ml.url, "jobs", "submit", "training", "j4",
        "--package-path", str(package), "--module-name", "trainer.task",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--staging-bucket gs://BUCKET" in result.stderr


def test_describe_prints_yaml_and_list_prints_a_table(fake_ml: FakeMl) -> None:
    job = {"jobId": "j1", "state": "RUNNING", "createTime": "2026-01-01T00:00:00Z"}
    fake_ml.answer("GET", f"{P}/jobs/j1", job)
    fake_ml.answer("GET", f"{P}/jobs", {"jobs": [job, {"jobId": "longer_job", "state": "QUEUED"}]})
    described = invoke(fake_ml.url, "jobs", "describe", "j1")
    assert yaml.safe_load(described.stdout) == job
    listed = invoke(fake_ml.url, "jobs", "list")
    assert listed.stdout.splitlines() == [
        "JOB_ID      STATUS   CREATED",
        "j1          RUNNING  2026-01-01T00:00:00Z",
        "longer_job  QUEUED",
    ]
    as_json = invoke(fake_ml.url, "jobs", "list", "--format", "json", "--limit", "1")
    assert __import__("json").loads(as_json.stdout) == [job]


def test_update_sends_the_merged_labels(fake_ml: FakeMl) -> None:
    fake_ml.answer(
        "GET", f"{P}/jobs/j1", {"jobId": "j1", "labels": {"a": "1", "b": "2"}, "etag": "e1"}
    )
    fake_ml.answer("PATCH", f"{P}/jobs/j1", {"jobId": "j1", "labels": {"a": "1", "c": "3"}})
    result = invoke(
        fake_ml.url, "jobs", "update", "j1", "--update-labels", "c=3", "--remove-labels", "b"
    )
    assert result.exit_code == 0, result.output
    patch = fake_ml.requests[1]
    assert patch.query == {"updateMask": "labels"}
    assert patch.json() == {"labels": {"a": "1", "c": "3"}, "etag": "e1"}


def test_cancel_and_not_found_errors(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", f"{P}/jobs/j1:cancel", {})
    assert invoke(fake_ml.url, "jobs", "cancel", "j1").stderr == "Cancelled job [j1].\n"
    missing = invoke(fake_ml.url, "jobs", "describe", "nope")
    assert missing.exit_code == 1
    assert missing.stderr == f"ERROR: (cairn.jobs.describe) {P}/jobs/nope unknown\n"


def test_stream_logs_follows_until_the_job_ends(fake_ml: FakeMl) -> None:
    logs = "/cairn/v1/projects/proj/jobs/j1/logs"
    fake_ml.answer("GET", logs, {"entries": [
        {"taskName": "master-replica-0", "text": "step 1"},
        {"taskName": "worker-replica-0", "text": "worker up"},
    ], "cursor": "c1", "jobState": "RUNNING"})  # fmt: skip
    fake_ml.answer("GET", logs, {"entries": [], "cursor": "c1", "jobState": "RUNNING"})
    fake_ml.answer("GET", logs, {"entries": [{"taskName": "master-replica-0", "text": "done"}],
                                 "cursor": "c2", "jobState": "SUCCEEDED"})  # fmt: skip
    fake_ml.answer("GET", logs, {"entries": [], "cursor": "c2", "jobState": "SUCCEEDED"})
    result = invoke(
        fake_ml.url, "jobs", "stream-logs", "j1",
        "--polling-interval", "0.05", "--task-name", "master-replica-0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["master-replica-0\tstep 1", "master-replica-0\tdone"]
    assert [r.query.get("cursor") for r in fake_ml.requests] == [None, "c1", "c1", "c2"]
    assert "SUCCEEDED" in result.stderr


# -- against a real `cairn server` ---------------------------------------------------------

E2E_PROJECT = "cli_jobs"

COUNTING_TRAINER = """
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--job-dir")
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
for epoch in range(args.epochs):
    print(f"epoch {epoch}", flush=True)
print("training done", flush=True)
"""

SLEEPING_TRAINER = """
import time
print("sleeping", flush=True)
time.sleep(600)
"""


def e2e(server: Any, *args: str) -> Result:
    return invoke(server.url, *args, project=E2E_PROJECT)


@pytest.mark.slow
def test_submit_streams_logs_and_describes_on_a_real_server(
    cairn_server: Any, tmp_path: Path
) -> None:
    package = make_trainer(tmp_path / "src", COUNTING_TRAINER)
    job = unique("cli_job")
    submitted = e2e(
        cairn_server, "jobs", "submit", "training", job,
        "--package-path", str(package), "--module-name", "trainer.task",
        "--staging-bucket", "gs://staging", "--job-dir", f"gs://outputs/{job}",
        "--labels", "owner=cli",
        "--stream-logs", "--", "--epochs", "2",
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    log_lines = [line for line in submitted.stdout.splitlines() if "\t" in line]
    assert [line.split("\t", 1)[1] for line in log_lines if "epoch" in line] == [
        "epoch 0",
        "epoch 1",
    ]
    assert submitted.stdout.rstrip().endswith("state: SUCCEEDED")

    described = yaml.safe_load(e2e(cairn_server, "jobs", "describe", job).stdout)
    assert described["state"] == "SUCCEEDED"
    assert described["labels"] == {"owner": "cli"}
    (package_uri,) = described["trainingInput"]["packageUris"]
    assert package_uri.startswith(f"gs://staging/{job}/")
    staged = cairn_server.home / "storage" / package_uri[len("gs://") :]
    assert staged.is_file()

    listed = json.loads(e2e(cairn_server, "jobs", "list", "--format", "json").stdout)
    assert job in [item["jobId"] for item in listed]
    typo = e2e(cairn_server, "jobs", "stream-logs", job, "--task-name", "nobody")
    assert typo.exit_code == 1 and typo.stdout == ""
    assert "its task names are master-replica-0 and service" in typo.stderr


@pytest.mark.slow
def test_cancel_and_stream_logs_end_on_a_real_server(cairn_server: Any, tmp_path: Path) -> None:
    package = make_trainer(tmp_path / "src", SLEEPING_TRAINER)
    job = unique("cli_sleep")
    submitted = e2e(
        cairn_server, "jobs", "submit", "training", job, "--package-path", str(package),
        "--module-name", "trainer.task", "--staging-bucket", "gs://staging",
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    assert yaml.safe_load(submitted.stdout)["jobId"] == job
    deadline = time.monotonic() + 120
    while yaml.safe_load(e2e(cairn_server, "jobs", "describe", job).stdout)["state"] != "RUNNING":
        assert time.monotonic() < deadline, "the job never started running"
        time.sleep(0.2)
    cancelled = e2e(cairn_server, "jobs", "cancel", job)
    assert cancelled.exit_code == 0, cancelled.output
    followed = e2e(cairn_server, "jobs", "stream-logs", job, "--polling-interval", "0.2")
    assert followed.exit_code == 0, followed.output
    assert "CANCELLED" in followed.stderr
    assert yaml.safe_load(e2e(cairn_server, "jobs", "describe", job).stdout)["state"] == (
        "CANCELLED"
    )
    again = e2e(cairn_server, "jobs", "cancel", job)
    assert again.exit_code == 1
    assert again.stderr.startswith("ERROR: (cairn.jobs.cancel) ")
