"""A root server runs user code as an unprivileged user that cannot touch the server's files.

Real `cairn server` processes, real trainer packages: the trainer itself tries to read the
server's database and the owner's credential, to write into the home, and to tamper with
its own run record and logs, and writes down how each attempt ended.
"""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.factories import build_trainer_sdist
from tests.remote import unique, upload_file, wait_job, wait_operation

from cairn.executors import DEFAULT_RUNNER_USER

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0,
        reason="only a server running as root switches user code to an unprivileged user",
    ),
]

P = "projects/isolation"

# Baked into the trainer: the home it must not get into (args naming server paths may be
# refused by the API, and a trainer has no other way to learn the server's home).
PROBING_TRAINER = """
import argparse, json, os, pathlib

HOME = pathlib.Path(HOME_PATH)
RUN_DIR = pathlib.Path.cwd().parent  # the working directory is <run dir>/work

def attempt(action):
    try:
        action()
    except PermissionError:
        return "PermissionError"
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "allowed"

parser = argparse.ArgumentParser()
parser.add_argument("--job-dir", required=True)
args, _ = parser.parse_known_args()
report = {
    "uid": os.geteuid(),
    "read the database": attempt(lambda: (HOME / "cairn.db").read_bytes()),
    "read the owner credential": attempt(
        lambda: (HOME / "credentials" / "owner.json").read_bytes()
    ),
    "write into the home": attempt(lambda: (HOME / "planted.txt").write_text("x")),
    "list the home": attempt(lambda: os.listdir(HOME)),
    "rewrite the run record": attempt(lambda: (RUN_DIR / "run.json").write_text("{}")),
    "replace the logs": attempt(lambda: os.rename(RUN_DIR / "logs", RUN_DIR / "moved")),
}
print("isolation report", json.dumps(report, sort_keys=True), flush=True)
job_dir = pathlib.Path(args.job_dir)
job_dir.mkdir(parents=True, exist_ok=True)
(job_dir / "report.json").write_text(json.dumps(report))
(job_dir / "work.txt").write_text("written from " + os.getcwd())
"""

TRAINING_TRAINER = """
import argparse, os, pathlib
import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--job-dir", required=True)
args, _ = parser.parse_known_args()
rng = np.random.default_rng(0)
features = rng.normal(size=(200, 4))
labels = (features[:, 0] + features[:, 1] > 0).astype(int)
model_dir = pathlib.Path(args.job_dir) / "model"
model_dir.mkdir(parents=True, exist_ok=True)
joblib.dump(LogisticRegression().fit(features, labels), model_dir / "model.joblib")
(pathlib.Path(args.job_dir) / "trainer-uid.txt").write_text(str(os.geteuid()))
"""


def run_job(server: Any, ml: Any, tmp_path: Path, code: str, job_dir: str) -> dict[str, Any]:
    sdist = build_trainer_sdist(tmp_path, code)
    job_id = unique("isolated")
    package = upload_file(
        server.url, sdist, "isolation", f"{job_id}/{sdist.name}", headers=server.headers()
    )
    ml.projects().jobs().create(
        parent=P,
        body={
            "jobId": job_id,
            "trainingInput": {
                "packageUris": [package],
                "pythonModule": "trainer.task",
                "region": "us-central1",
                "jobDir": job_dir,
            },
        },
    ).execute()
    return wait_job(ml, f"{P}/jobs/{job_id}")


def runner_uid() -> int:
    return pwd.getpwnam(DEFAULT_RUNNER_USER).pw_uid


def test_a_trainer_cannot_read_or_change_the_servers_files(
    start_server: Any, tmp_path: Path
) -> None:
    server = start_server()
    credential = server.home / "credentials" / "owner.json"
    if not credential.exists():  # the server writes one once authentication lands
        credential.parent.mkdir(mode=0o700, exist_ok=True)
        credential.write_text('{"secret": "only the server may read this"}')
        credential.chmod(0o600)
    code = PROBING_TRAINER.replace("HOME_PATH", repr(str(server.home)))
    job = run_job(server, server.client(), tmp_path, code, "gs://isolation/probe")

    assert job["state"] == "SUCCEEDED", job
    report = json.loads((server.home / "storage/isolation/probe/report.json").read_text())
    assert report.pop("uid") == runner_uid()
    assert report == {
        "read the database": "PermissionError",
        "read the owner credential": "PermissionError",
        "write into the home": "PermissionError",
        "list the home": "PermissionError",
        "rewrite the run record": "PermissionError",
        "replace the logs": "PermissionError",
    }
    assert not (server.home / "planted.txt").exists()


def test_an_unprivileged_trainer_trains_a_model_that_deploys_and_predicts(
    start_server: Any, tmp_path: Path
) -> None:
    server = start_server()
    ml = server.client()
    job = run_job(server, ml, tmp_path, TRAINING_TRAINER, "gs://isolation/trained")
    assert job["state"] == "SUCCEEDED", job
    assert (server.home / "storage/isolation/trained/trainer-uid.txt").read_text() == str(
        runner_uid()
    )

    model = unique("isolated_model")
    ml.projects().models().create(parent=P, body={"name": model}).execute()
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(
            parent=f"{P}/models/{model}",
            body={"name": "v1", "deploymentUri": "gs://isolation/trained/model"},
        )
        .execute()
    )
    assert "error" not in wait_operation(ml, operation["name"])
    result = (
        ml.projects()
        .predict(name=f"{P}/models/{model}", body={"instances": [[3.0, 3.0, 0.0, 0.0]]})
        .execute()
    )
    assert result == {"predictions": [1]}
    assert server.process is not None
    nodes = [
        child
        for child in psutil.Process(server.process.pid).children(recursive=True)
        if "cairn.serving.node" in child.cmdline()
    ]
    assert nodes, "no prediction node found among the server's children"
    assert {node.uids().effective for node in nodes} == {runner_uid()}
