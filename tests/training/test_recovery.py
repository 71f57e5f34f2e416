"""A server crash: replicas outlive it, and a new runner re-adopts them and reads their exit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from tests.training.conftest import RunRecorder, wait_for_file

from cairn.executors import is_running

_REPO_ROOT = Path(__file__).resolve().parents[2]

# A stand-in "server": starts one job with a runner, then waits to be killed.
_SERVER = textwrap.dedent(
    """
    import json, sys, threading
    from pathlib import Path
    from cairn.training import TrainingRunner
    from tests.training.packages import local_buckets

    root, spec = Path(sys.argv[1]), json.loads(sys.argv[2])
    runner = TrainingRunner(root / "jobs", root / "envs", local_buckets(root / "storage"))
    runner.start("p1", "job_crash", spec, on_state=print, on_finished=print)
    threading.Event().wait()
    """
)


@pytest.mark.parametrize(("code", "state"), [(0, "SUCCEEDED"), (5, "FAILED")])
def test_replicas_outlive_a_crash_and_are_re_adopted(
    tmp_path: Path, trainer_sdist: Path, make_runner, code: int, state: str
) -> None:
    out = tmp_path / "out"
    spec = {
        "packageUris": [str(trainer_sdist)],
        "pythonModule": "trainer.task",
        "args": ["--mode=sleep", "--seconds=3", f"--code={code}"],
        "jobDir": str(out),
    }
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(tmp_path), json.dumps(spec)], cwd=_REPO_ROOT
    )
    try:
        pids = json.loads(wait_for_file(out / "pids.json").read_text())
        wait_for_file(tmp_path / "jobs" / "p1" / "job_crash" / "run.json")
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    assert is_running(pids["trainer"])  # the replica survived its server

    runner = make_runner()
    recorder = RunRecorder()
    assert runner.recover("p1", "job_crash", spec, **recorder.callbacks)
    outcome = recorder.wait()

    assert outcome.state == state
    if code:
        assert outcome.error_message is not None
        assert f"non-zero status of {code}" in outcome.error_message
    assert not is_running(pids["trainer"])
    # Had the server died before the job heard of it, the recorded outcome still counts.
    again = RunRecorder()
    assert make_runner().recover("p1", "job_crash", spec, **again.callbacks)
    assert again.wait() == outcome


def test_a_replica_killed_while_the_server_was_down_fails_the_job_with_its_cause(
    tmp_path: Path, trainer_sdist: Path, make_runner
) -> None:
    out = tmp_path / "out"
    spec = {
        "packageUris": [str(trainer_sdist)],
        "pythonModule": "trainer.task",
        "args": ["--mode=sleep", "--seconds=600"],
        "jobDir": str(out),
    }
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(tmp_path), json.dumps(spec)], cwd=_REPO_ROOT
    )
    try:
        pids = json.loads(wait_for_file(out / "pids.json").read_text())
        wait_for_file(tmp_path / "jobs" / "p1" / "job_crash" / "run.json")
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    psutil.Process(pids["trainer"]).kill()
    deadline = time.monotonic() + 30
    while any(is_running(r["handle"]["pid"]) for r in _records(tmp_path)):
        assert time.monotonic() < deadline, "the replica wrapper did not exit"
        time.sleep(0.05)

    recorder = RunRecorder()
    assert make_runner().recover("p1", "job_crash", spec, **recorder.callbacks)
    outcome = recorder.wait()
    assert outcome.state == "FAILED"
    assert outcome.error_message is not None
    assert "The replica master 0 was ended by SIGKILL." in outcome.error_message
    deadline = time.monotonic() + 30
    while is_running(pids["grandchild"]):  # what the dead replica left behind is ended
        assert time.monotonic() < deadline, "the replica's grandchild was left running"
        time.sleep(0.05)


def _records(tmp_path: Path) -> list[dict]:
    run = json.loads((tmp_path / "jobs" / "p1" / "job_crash" / "run.json").read_text())
    return list(run["replicas"])


def test_nothing_to_recover_without_a_run(make_runner) -> None:
    recorder = RunRecorder()
    assert not make_runner().recover("p1", "never_ran", {}, **recorder.callbacks)
    assert recorder.outcomes == []
