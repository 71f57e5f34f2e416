"""The CLI as someone moving from AI Platform meets it, against a real server on loopback:
a deploy script of that era run with only `gcloud ai-platform` replaced by `cairn` (and
`gsutil` by `cairn storage`), local commands that find the running server's buckets, the
home said when no server answers, and nothing uploaded for an invalid name."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.factories import sklearn_model_dir
from tests.remote import free_port, unique

from cairn.cli.main import cli

VENV_BIN = Path(sys.executable).parent

TRAINER = """
import argparse, os

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--job-dir", required=True)
parser.add_argument("--rows", type=int, default=50)
args = parser.parse_args()
rng = np.random.default_rng(0)
features = rng.normal(size=(args.rows, 4))
model = LogisticRegression().fit(features, (features[:, 0] > 0).astype(int))
os.makedirs(os.path.join(args.job_dir, "model"), exist_ok=True)
joblib.dump(model, os.path.join(args.job_dir, "model", "model.joblib"))
print("trained on", args.rows, "rows")
"""

# As Google's samples wrote them (train-cloud.sh, deploy.sh): gcloud's spellings, global flags
# after the command, --quiet deletes. The test changes only the command names.
DEPLOY_SCRIPT = r"""#!/bin/bash
set -euo pipefail

PROJECT_ID=$1
BUCKET_NAME=$2
SUFFIX=$3
REGION=us-central1
JOB_NAME=census_${SUFFIX}
MODEL_NAME=census_model_${SUFFIX}
VERSION_NAME=v1
FRAMEWORK=SCIKIT_LEARN
RUNTIME_VERSION=2.11
PYTHON_VERSION=3.7
JOB_DIR=gs://${BUCKET_NAME}/jobs/${JOB_NAME}

gsutil mb gs://${BUCKET_NAME}

# train-local.sh
gcloud ai-platform local train \
  --package-path trainer \
  --module-name trainer.task \
  --job-dir gs://${BUCKET_NAME}/local \
  -- \
  --rows 40

# train-cloud.sh
gcloud ai-platform jobs submit training ${JOB_NAME} \
  --job-dir ${JOB_DIR} \
  --package-path trainer \
  --module-name trainer.task \
  --region ${REGION} \
  --runtime-version=${RUNTIME_VERSION} \
  --python-version=${PYTHON_VERSION} \
  --scale-tier BASIC \
  --stream-logs \
  --project ${PROJECT_ID} \
  --verbosity info \
  -- \
  --rows 60

STATE=$(gcloud ai-platform jobs describe ${JOB_NAME} --project ${PROJECT_ID} --format="value(state)")
if [ "${STATE}" != "SUCCEEDED" ]; then echo "job ended ${STATE}"; exit 1; fi

gcloud ai-platform local predict \
  --model-dir ${JOB_DIR}/model \
  --json-instances input.json \
  --framework ${FRAMEWORK} \
  --verbosity error > local_predictions.json

# deploy.sh
gcloud ai-platform models create ${MODEL_NAME} \
  --regions ${REGION} \
  --enable-logging \
  --project ${PROJECT_ID}

gcloud ai-platform versions create ${VERSION_NAME} \
  --model ${MODEL_NAME} \
  --origin ${JOB_DIR}/model \
  --runtime-version=${RUNTIME_VERSION} \
  --framework ${FRAMEWORK} \
  --python-version=${PYTHON_VERSION} \
  --machine-type n1-standard-4 \
  --region ${REGION} \
  --project ${PROJECT_ID}

gcloud ai-platform predict \
  --model ${MODEL_NAME} \
  --version ${VERSION_NAME} \
  --json-instances input.json \
  --region ${REGION} \
  --project ${PROJECT_ID} \
  --format json > online_predictions.json

# A bigger tier as gcloud spells it, sent without waiting, then cancelled.
gcloud ai-platform jobs submit training ${JOB_NAME}_std \
  --staging-bucket gs://${BUCKET_NAME} \
  --package-path trainer \
  --module-name trainer.task \
  --runtime-version ${RUNTIME_VERSION} \
  --scale-tier STANDARD_1 \
  --region ${REGION} \
  --async \
  --project ${PROJECT_ID}
gcloud ai-platform jobs cancel ${JOB_NAME}_std --project ${PROJECT_ID} --quiet

# cleanup.sh
gcloud ai-platform versions delete ${VERSION_NAME} --model ${MODEL_NAME} --quiet --project ${PROJECT_ID}
gcloud ai-platform models delete ${MODEL_NAME} --quiet --project ${PROJECT_ID}
"""


def as_cairn(script: str) -> str:
    """The one change a user makes to an AI Platform script."""
    return script.replace("gcloud ai-platform", "cairn").replace("gsutil", "cairn storage")


def user_env(server: Any, home: Path) -> dict[str, str]:
    """A shell with Cairn on PATH and no CAIRN_HOME: the CLI finds the server's home itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        CAIRN_API=server.url,
        HOME=str(home),  # ~/.cairn must not be where anything lands
    )
    return env


# The script trains on runtime 2.11 as Google's samples do: the first run builds that
# runtime's environment (TensorFlow 2.15, a large download), so it runs with the runtime
# suite after `make test` (.ci/run).
@pytest.mark.slow
@pytest.mark.runtimes
@pytest.mark.timeout(1800)
def test_an_ai_platform_deploy_script_runs_with_only_the_command_renamed(
    cairn_server: Any, tmp_path: Path
) -> None:
    work = tmp_path / "project"
    (work / "trainer").mkdir(parents=True)
    (work / "trainer" / "__init__.py").write_text("")
    (work / "trainer" / "task.py").write_text(textwrap.dedent(TRAINER))
    (work / "input.json").write_text("[1.0, 0.5, -0.2, 0.3]\n[-2.0, 0.1, 0.4, 0.0]\n")
    (work / "deploy.sh").write_text(as_cairn(DEPLOY_SCRIPT))
    suffix = unique("s").lower()
    bucket = f"deploy-{suffix.replace('_', '-')}"
    done = subprocess.run(
        ["bash", "deploy.sh", "cli_deploy", bucket, suffix],
        cwd=work,
        env=user_env(cairn_server, tmp_path / "user-home"),
        capture_output=True,
        text=True,
        timeout=1700,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    buckets = cairn_server.home / "storage" / bucket
    assert (buckets / "local" / "model" / "model.joblib").is_file()  # local train, gs:// job dir
    assert (buckets / "jobs" / f"census_{suffix}" / "model" / "model.joblib").is_file()
    assert not (tmp_path / "user-home" / ".cairn").exists()
    local = (work / "local_predictions.json").read_text()
    online = (work / "online_predictions.json").read_text()
    import json

    assert json.loads(local)["predictions"] == json.loads(online)["predictions"] == [1, 0]
    assert "trained on 60 rows" in done.stdout


def run_cli(server_url: str, home: Path, *args: str) -> Any:
    env = {"CAIRN_API": server_url, "CAIRN_HOME": None, "HOME": str(home)}
    return CliRunner(env=env).invoke(cli, list(args), prog_name="cairn")


def test_storage_ls_gs_lists_the_running_servers_buckets(cairn_server: Any, tmp_path: Path) -> None:
    bucket = unique("ls").lower().replace("_", "-")
    (cairn_server.home / "storage" / bucket / "dir").mkdir(parents=True)
    (cairn_server.home / "storage" / bucket / "dir" / "f.txt").write_text("12345")
    for args in (["storage", "ls", "gs://"], ["storage", "ls"]):
        listed = run_cli(cairn_server.url, tmp_path, *args)
        assert listed.exit_code == 0, listed.output
        assert f"gs://{bucket}/" in listed.stdout.splitlines()
        assert listed.stderr == ""  # found the server: nothing to warn about
    as_json = run_cli(
        cairn_server.url, tmp_path, "storage", "ls", "-r", f"gs://{bucket}", "--format", "json"
    )
    assert as_json.exit_code == 0, as_json.output
    import json

    (entry,) = json.loads(as_json.stdout)
    assert entry["url"] == f"gs://{bucket}/dir/f.txt" and entry["size"] == 5


def test_with_no_server_storage_says_which_home_it_used(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    result = run_cli(nobody, tmp_path, "storage", "ls", "gs://missing-bucket")
    assert result.exit_code == 1
    home_buckets = str(tmp_path / ".cairn" / "storage")
    warning, error = result.stderr.splitlines()
    assert (
        warning.startswith(f"WARNING: no Cairn server answers at {nobody}")
        and home_buckets in warning
    )
    assert error.startswith("ERROR: (cairn.storage.ls) Bucket gs://missing-bucket/ does not exist")
    assert f"Looked in the local buckets in {home_buckets}" in error


def test_local_predict_reads_gs_model_dirs_from_the_servers_buckets(
    cairn_server: Any, tmp_path: Path
) -> None:
    bucket = unique("lp").lower().replace("_", "-")
    sklearn_model_dir(cairn_server.home / "storage" / bucket / "model")
    rows = tmp_path / "rows.json"
    rows.write_text("[1.0, 1.0, 0.0, 0.0]\n[-1.0, -1.0, 0.0, 0.0]\n")
    result = run_cli(
        cairn_server.url, tmp_path, "local", "predict", "--model-dir", f"gs://{bucket}/model",
        "--json-instances", str(rows), "--framework", "SCIKIT_LEARN",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"predictions":[1,0]' in result.stdout
    missing = run_cli(
        cairn_server.url, tmp_path, "local", "predict", "--model-dir", f"gs://{bucket}/none",
        "--json-instances", str(rows),
    )  # fmt: skip
    assert missing.exit_code == 1
    assert str(cairn_server.home / "storage") in missing.stderr  # says where it looked


def test_an_invalid_name_leaves_no_stray_upload_on_a_real_server(
    cairn_server: Any, tmp_path: Path
) -> None:
    bucket = unique("stray").lower().replace("_", "-")
    package = tmp_path / "trainer"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text("print('never runs')\n")
    submitted = run_cli(
        cairn_server.url, tmp_path, "jobs", "submit", "training", "not-a-valid-id",
        "--package-path", str(package), "--module-name", "trainer.task",
        "--staging-bucket", f"gs://{bucket}",
    )  # fmt: skip
    assert submitted.exit_code == 1
    assert submitted.stderr.startswith("ERROR: (cairn.jobs.submit.training) argument JOB: ")
    model = sklearn_model_dir(tmp_path / "model")
    created = run_cli(
        cairn_server.url, tmp_path, "versions", "create", "v1", "--model", unique("absent"),
        "--origin", str(model), "--staging-bucket", f"gs://{bucket}",
        "--framework", "SCIKIT_LEARN",
    )  # fmt: skip
    assert created.exit_code == 1
    assert created.stderr.startswith("ERROR: (cairn.versions.create) ")
    assert not (cairn_server.home / "storage" / bucket).exists()


def test_a_job_the_server_refuses_after_the_upload_leaves_no_package_behind(
    cairn_server: Any, tmp_path: Path
) -> None:
    """GPUs on a machine without any are refused by the server, not by the CLI's own check
    (only the server knows its machine): the package uploaded for the job is removed."""
    bucket = unique("refused").lower().replace("_", "-")
    package = tmp_path / "trainer"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text("print('never runs')\n")
    job = unique("gpu_job")
    submitted = run_cli(
        cairn_server.url, tmp_path, "jobs", "submit", "training", job,
        "--package-path", str(package), "--module-name", "trainer.task",
        "--staging-bucket", f"gs://{bucket}", "--scale-tier", "basic-gpu",
    )  # fmt: skip
    assert submitted.exit_code == 1, submitted.output
    assert "GPU" in submitted.stderr, submitted.stderr
    assert "Could not remove" not in submitted.stderr, submitted.stderr
    uploaded = [p for p in (cairn_server.home / "storage" / bucket).rglob("*") if p.is_file()]
    assert uploaded == []
