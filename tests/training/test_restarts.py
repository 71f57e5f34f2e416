"""Worker restarts: a crashed worker or evaluator comes back on its own port and resumes from
its checkpoint; restarts are bounded; the primary and parameter servers are never restarted;
a restarted server goes on counting."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.training.conftest import RunRecorder, wait_for_file
from tests.training.packages import build_sdist
from tests.training.restart_trainer import TRAINER

_REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def restart_sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("restart-trainer")
    return build_sdist(where, "trainer", {"trainer/__init__.py": "", "trainer/task.py": TRAINER})


def _cluster(package: str, *args: str, workers: int = 1, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "packageUris": [package],
        "pythonModule": "trainer.task",
        "args": list(args),
        "region": "us-central1",
        "jobDir": "gs://bkt/out",
        "scaleTier": "CUSTOM",
        "masterType": "n1-standard-4",
        "workerType": "n1-standard-4",
        "workerCount": str(workers),
    }
    spec.update(fields)
    return spec


def _lines(runner: Any, job_id: str, task_name: str | None = None) -> list[str]:
    entries, _ = runner.read_logs("p1", job_id, None, task_name)
    return [f"{e['taskName']}: {e['text']}" for e in entries]


def _states(runner: Any, job_id: str) -> dict[str, dict[str, Any]]:
    return {r["taskName"]: r for r in runner.replica_states("p1", job_id)}


def test_a_crashed_worker_restarts_on_its_port_and_resumes_from_its_checkpoint(
    make_runner, restart_sdist: Path, upload, storage_root: Path
) -> None:
    runner = make_runner(restart_delay_s=0.1)
    recorder = RunRecorder()
    spec = _cluster(
        upload(restart_sdist),
        "--crash-once-at=2",
        workers=2,
        evaluatorType="n1-standard-4",
        evaluatorCount="1",
    )
    runner.start("p1", "job_restart", spec, **recorder.callbacks)
    outcome = recorder.wait()
    assert outcome.state == "SUCCEEDED", outcome.error_message

    out = storage_root / "bkt" / "out"
    for me in ("worker-0", "worker-1", "evaluator-0"):
        starts = (out / f"starts-{me}.jsonl").read_text().splitlines()
        assert len(starts) == 2 and starts[0] == starts[1], me  # the same TF_CONFIG again
        assert json.loads((out / f"checkpoint-{me}.json").read_text()) == {"step": 5}
    lines = _lines(runner, "job_restart")
    assert (
        "service: Replica worker-replica-1 exited with status 7; restarting it (restart 1 of 5)."
        in lines
    )
    worker = _lines(runner, "job_restart", "worker-replica-1")
    assert worker == [
        "worker-replica-1: worker-1 starting",
        "worker-replica-1: worker-1 step 1",
        "worker-replica-1: worker-1 step 2",
        "worker-replica-1: worker-1 crashing at step 2",
        "worker-replica-1: worker-1 resuming from the checkpoint of step 2",
        "worker-replica-1: worker-1 step 3",
        "worker-replica-1: worker-1 step 4",
        "worker-replica-1: worker-1 step 5",
        "worker-replica-1: worker-1 done",
    ]
    # The restart line comes between the crash and the resumed run.
    crash = lines.index("worker-replica-1: worker-1 crashing at step 2")
    restart = lines.index(
        "service: Replica worker-replica-1 exited with status 7; restarting it (restart 1 of 5)."
    )
    resume = lines.index("worker-replica-1: worker-1 resuming from the checkpoint of step 2")
    assert crash < restart < resume

    states = _states(runner, "job_restart")
    assert states["master-replica-0"] == {
        "taskName": "master-replica-0",
        "state": "SUCCEEDED",
        "exitCode": 0,
    }
    for name in ("worker-replica-0", "worker-replica-1", "evaluator-replica-0"):
        assert states[name] == {
            "taskName": name,
            "state": "SUCCEEDED",
            "restartCount": 1,
            "exitCode": 0,
        }


def test_restarts_are_bounded_and_the_job_fails_naming_the_replica(
    make_runner, restart_sdist: Path, upload, storage_root: Path
) -> None:
    runner = make_runner(max_restarts=2, restart_delay_s=0.1)
    recorder = RunRecorder()
    runner.start(
        "p1",
        "job_crashing",
        _cluster(upload(restart_sdist), "--always-crash"),
        **recorder.callbacks,
    )
    outcome = recorder.wait()

    assert outcome.state == "FAILED"
    assert outcome.error_message == (
        "The replica worker 0 exited with a non-zero status of 7. It had been restarted 2 "
        "times, the most Cairn allows. The last lines of its stderr:\n"
        "worker-0 cannot start\nworker-0 cannot start\nworker-0 cannot start"
    )
    starts = (storage_root / "bkt" / "out" / "starts-worker-0.jsonl").read_text().splitlines()
    assert len(starts) == 3
    service = _lines(runner, "job_crashing", "service")
    restarts = [line for line in service if "restarting it" in line]
    assert restarts == [
        f"service: Replica worker-replica-0 exited with status 7; restarting it (restart {k} of 2)."
        for k in (1, 2)
    ]
    states = _states(runner, "job_crashing")
    assert states["worker-replica-0"]["state"] == "FAILED"
    assert states["worker-replica-0"]["restartCount"] == 2
    assert states["worker-replica-0"]["exitCode"] == 7
    assert states["master-replica-0"]["state"] == "STOPPED"  # ended by Cairn with the job


@pytest.mark.parametrize(
    ("args", "max_restarts", "message"),
    [
        (["--ps-crash"], 5, "The replica ps 0 exited with a non-zero status of 9."),
        (["--always-crash"], 0, "The replica worker 0 exited with a non-zero status of 7."),
    ],
    ids=["parameter-server", "restarts-off"],
)
def test_parameter_servers_and_servers_without_restarts_fail_at_once(
    make_runner, restart_sdist: Path, upload, args: list[str], max_restarts: int, message: str
) -> None:
    runner = make_runner(max_restarts=max_restarts, restart_delay_s=0.1)
    recorder = RunRecorder()
    spec = _cluster(
        upload(restart_sdist),
        *args,
        parameterServerType="n1-standard-4",
        parameterServerCount="1",
    )
    runner.start("p1", "job_no_restart", spec, **recorder.callbacks)
    outcome = recorder.wait()
    assert outcome.state == "FAILED"
    assert outcome.error_message is not None
    assert outcome.error_message.startswith(message + " The last lines of its stderr:")
    assert not [line for line in _lines(runner, "job_no_restart") if "restarting it" in line]


# A stand-in "server": starts one job with a runner, then waits to be killed.
_SERVER = textwrap.dedent(
    """
    import json, sys, threading
    from pathlib import Path
    from cairn.training import TrainingRunner
    from tests.training.packages import local_buckets

    root, spec = Path(sys.argv[1]), json.loads(sys.argv[2])
    runner = TrainingRunner(root / "jobs", root / "envs", local_buckets(root / "storage"))
    runner.start(
        "p1", "job_crash", spec, on_state=print, on_finished=print,
        extra_args=["--learning-rate=0.5"],
        extra_env={"GOOGLE_APPLICATION_CREDENTIALS": "/the/jobs/credential.json"},
    )
    threading.Event().wait()
    """
)


def test_a_worker_killed_while_the_server_was_down_is_restarted_by_the_next_one(
    tmp_path: Path, restart_sdist: Path, make_runner
) -> None:
    out = tmp_path / "out"
    spec = _cluster(str(restart_sdist), "--wait-to-be-killed", jobDir=str(out))
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(tmp_path), json.dumps(spec)], cwd=_REPO_ROOT
    )
    try:
        pid = int(wait_for_file(out / "pid-worker-0").read_text())
        wait_for_file(tmp_path / "jobs" / "p1" / "job_crash" / "run.json")
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    worker = psutil.Process(pid)
    worker.kill()
    worker.wait(timeout=30)

    runner = make_runner(restart_delay_s=0.1)
    recorder = RunRecorder()
    assert runner.recover("p1", "job_crash", spec, **recorder.callbacks)
    outcome = recorder.wait()

    assert outcome.state == "SUCCEEDED", outcome.error_message
    starts = (out / "starts-worker-0.jsonl").read_text().splitlines()
    # The ports, a trial's arguments and the job's variables came from the run record.
    assert len(starts) == 2 and starts[0] == starts[1]
    first = json.loads(starts[0])
    assert "--learning-rate=0.5" in first["argv"]
    assert first["credential"] == "/the/jobs/credential.json"
    lines = _lines(runner, "job_crash")
    assert (
        "service: Replica worker-replica-0 was ended by SIGKILL; restarting it (restart 1 of 5)."
        in lines
    )
    assert "worker-replica-0: worker-0 resuming from the checkpoint of step 2" in lines
    assert _states(runner, "job_crash")["worker-replica-0"]["restartCount"] == 1


def test_lines_of_different_replicas_come_in_the_order_they_were_written(
    make_runner, restart_sdist: Path, upload
) -> None:
    runner = make_runner()
    recorder = RunRecorder()
    spec = _cluster(upload(restart_sdist), "--interleave=8")
    runner.start("p1", "job_ticks", spec, **recorder.callbacks)
    assert recorder.wait().state == "SUCCEEDED"
    ticks = [line for line in _lines(runner, "job_ticks") if ": tick " in line]
    assert ticks == [
        f"{'master' if i % 2 == 0 else 'worker'}-replica-0: tick {i}" for i in range(8)
    ]
    entries, _ = runner.read_logs("p1", "job_ticks", None)
    stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in entries]
    assert stamps == sorted(stamps)
