"""`cairn local train` runs a trainer from source, like `gcloud ai-platform local train`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from tests.training.packages import trainer_modules

from cairn.executors import is_running
from cairn.training.cluster import free_port

CAIRN = str(Path(sys.executable).parent / "cairn")


@pytest.fixture
def package_path(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    for relative, text in trainer_modules().items():
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_text(text)
    return source / "trainer"


def _local_train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CAIRN, "local", "train", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "CAIRN_HOME": str(tmp_path / "home")},
    )


def test_a_single_process_gets_the_local_tf_config(tmp_path: Path, package_path: Path) -> None:
    out = tmp_path / "out"
    result = _local_train(
        tmp_path,
        "--module-name=trainer.task",
        f"--package-path={package_path}",
        f"--job-dir={out}",
        "--",
        "--mode",
        "ok",
    )
    assert result.returncode == 0, result.stderr
    assert "trainer none-0 done" in result.stdout
    seen = json.loads((out / "seen-none-0.json").read_text())
    assert seen["tf_config"] == {
        "job": {"job_name": "trainer.task", "args": ["--mode", "ok", "--job-dir", str(out)]},
        "task": {},
        "cluster": {},
        "environment": "cloud",
    }
    assert Path(seen["cwd"]) == package_path.parent  # run from source, not installed
    assert (out / "model.txt").read_text() == "trained"


def test_the_exit_code_is_the_trainers(tmp_path: Path, package_path: Path) -> None:
    result = _local_train(
        tmp_path,
        "--module-name=trainer.task",
        f"--package-path={package_path}",
        "--job-dir",
        str(tmp_path / "out"),
        "--",
        "--mode=fail",
    )
    assert result.returncode == 3
    assert "the data could not be read" in result.stderr


def test_distributed_runs_a_real_cluster_on_localhost(tmp_path: Path, package_path: Path) -> None:
    out = tmp_path / "out"
    port = free_port()
    result = _local_train(
        tmp_path,
        "--module-name=trainer.task",
        f"--package-path={package_path}",
        f"--job-dir={out}",
        "--distributed",
        "--worker-count=2",
        "--parameter-server-count=1",
        "--evaluator-count=1",
        f"--start-port={port}",
        "--",
        "--mode=cluster",
    )
    assert result.returncode == 0, result.stderr
    chief = json.loads((out / "seen-chief-0.json").read_text())["tf_config"]
    assert chief["cluster"] == {
        "chief": [f"localhost:{port}"],
        "ps": [f"localhost:{port + 1}"],
        "worker": [f"localhost:{port + 2}", f"localhost:{port + 3}"],
    }
    assert chief["task"] == {"type": "chief", "index": 0}
    evaluator = json.loads((out / "seen-evaluator-0.json").read_text())["tf_config"]
    assert evaluator["task"] == {"type": "evaluator", "index": 0}
    # The parameter server serves forever; local train ended it with the chief.
    ps_seen = json.loads((out / "seen-ps-0.json").read_text())
    assert ps_seen["tf_config"]["task"] == {"type": "ps", "index": 0}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        assert "--mode=cluster" not in cmdline or not is_running(proc.pid)


def test_help_explains_the_command(tmp_path: Path) -> None:
    result = _local_train(tmp_path, "--help")
    assert result.returncode == 0
    assert "--module-name" in result.stdout and "--distributed" in result.stdout


def test_gs_job_dirs_map_to_local_buckets(tmp_path: Path, package_path: Path) -> None:
    result = _local_train(
        tmp_path,
        "--module-name=trainer.task",
        f"--package-path={package_path}",
        "--job-dir=gs://bkt/local-out",
    )
    assert result.returncode == 0, result.stderr
    out = tmp_path / "home" / "storage" / "bkt" / "local-out"
    assert (out / "model.txt").read_text() == "trained"
    seen = json.loads((out / "seen-none-0.json").read_text())
    assert seen["argv"][-2:] == ["--job-dir", str(out.resolve())]
