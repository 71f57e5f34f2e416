"""Local process executor: real child process trees, logs, exit files, adoption, ending."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from cairn.executors import (
    LaunchSpec,
    LocalProcessExecutor,
    ReplicaLost,
    ReplicaProcess,
    ReplicaRecord,
    is_running,
)


def _spec(tmp_path: Path, code: str, name: str = "master-replica-0") -> LaunchSpec:
    return LaunchSpec(
        name=name,
        argv=[sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path / "work",
        log_path=tmp_path / "logs" / f"{name}.log",
        stderr_path=tmp_path / "logs" / f"{name}.stderr",
        exit_path=tmp_path / "exit" / f"{name}.code",
    )


def _wait_exit(process: ReplicaProcess, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while (code := process.poll()) is None:
        assert time.monotonic() < deadline, "the replica did not end"
        time.sleep(0.05)
    return code


def _wait_for(path: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path.read_text()


def test_output_and_exit_code_are_captured(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        """
        import os, sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
        print(os.getcwd())
        sys.exit(7)
        """,
    )
    process = LocalProcessExecutor().launch(spec)
    assert _wait_exit(process) == 7
    log = spec.log_path.read_text().splitlines()
    assert sorted(log) == sorted(["to stdout", "to stderr", str(spec.cwd)])
    assert spec.stderr_path.read_text() == "to stderr\n"
    assert spec.exit_path.read_text().strip() == "7"
    deadline = time.monotonic() + 10  # the wrapper exits right after writing the file
    while process.is_alive():
        assert time.monotonic() < deadline, "the wrapper outlived its command"
        time.sleep(0.05)


def test_terminate_ends_grandchildren_that_ignore_sigterm(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    spec = _spec(
        tmp_path,
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "open({str(pid_file)!r}, 'w').write(str(__import__('os').getpid())); time.sleep(600)"])
        time.sleep(600)
        """,
    )
    process = LocalProcessExecutor().launch(spec)
    grandchild = int(_wait_for(pid_file))
    assert is_running(grandchild)

    # Long enough for the wrapper to record the exit even on a loaded machine; the grandchild
    # ignores SIGTERM, so only the SIGKILL after the grace period ends it.
    process.terminate(grace_s=5.0)

    assert not is_running(grandchild)
    assert not is_running(process.pid)
    assert _wait_exit(process) < 0  # the user command was ended by a signal


def test_a_new_executor_adopts_a_running_replica_and_reads_its_exit(tmp_path: Path) -> None:
    go = tmp_path / "go"
    spec = _spec(
        tmp_path,
        f"""
        import os, sys, time
        while not os.path.exists({str(go)!r}):
            time.sleep(0.05)
        sys.exit(4)
        """,
    )
    record = LocalProcessExecutor().launch(spec).record

    adopted = LocalProcessExecutor().adopt(record)
    assert adopted is not None
    assert adopted.poll() is None
    assert adopted.is_alive()
    go.touch()
    assert _wait_exit(adopted) == 4


def test_adoption_refuses_a_reused_pid_or_a_vanished_replica(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "import time; time.sleep(600)")
    process = LocalProcessExecutor().launch(spec)
    try:
        handle = {**process.record.handle, "create_time": process.create_time - 1000}
        wrong_start = replace(process.record, handle=handle)
        assert LocalProcessExecutor().adopt(wrong_start) is None
        # Another executor's replica is no process of this machine.
        assert LocalProcessExecutor().adopt(replace(process.record, executor="ray")) is None
    finally:
        process.terminate(grace_s=0.5)
    spec.exit_path.unlink(missing_ok=True)  # as if it had been SIGKILLed with its wrapper
    assert LocalProcessExecutor().adopt(process.record) is None


def test_a_replica_killed_with_its_wrapper_is_reported_lost(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "import time; time.sleep(600)")
    process = LocalProcessExecutor().launch(spec)
    os.killpg(process.pid, 9)
    with pytest.raises(ReplicaLost):
        _wait_exit(process)


DAEMON = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(sys.argv[1] + ".tmp", "w").write(str(os.getpid()))
        os.replace(sys.argv[1] + ".tmp", sys.argv[1])
        time.sleep(600)
    os._exit(0)
while not os.path.exists(sys.argv[1]):  # end only once the daemon runs, or it may never start
    time.sleep(0.01)
"""


def test_a_daemon_the_replica_leaves_behind_is_ended_with_it(tmp_path: Path) -> None:
    import psutil

    pid_file = tmp_path / "daemon.pid"
    done = subprocess.run(
        [
            sys.executable, "-m", "cairn.executors.replica_shim",
            "--log", str(tmp_path / "log"), "--stderr-log", str(tmp_path / "err"),
            "--exit-file", str(tmp_path / "exit"),
            "--", sys.executable, "-c", DAEMON, str(pid_file),
        ],
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    daemon = int(pid_file.read_text())
    assert not psutil.pid_exists(daemon) or psutil.Process(daemon).status() == psutil.STATUS_ZOMBIE


def test_user_code_inherits_neither_the_servers_settings_nor_its_credential() -> None:
    from cairn.executors import user_code_environment

    server = {
        "PATH": "/usr/bin",
        "CAIRN_DATABASE_URL": "postgresql://cairn:secret@db/cairn",
        "GOOGLE_APPLICATION_CREDENTIALS": "/home/cairn/.cairn/credentials/owner.json",
    }
    assert user_code_environment(server) == {"PATH": "/usr/bin"}


def test_records_written_before_executor_handles_are_read_as_local_processes() -> None:
    old = {
        "name": "master-replica-0",
        "pid": 4242,
        "create_time": 1700000000.5,
        "log_path": "/l",
        "stderr_path": "/e",
        "exit_path": "/x",
        "extra": {},
    }
    record = ReplicaRecord.from_json(old)
    assert record.executor == "local"
    assert record.handle == {"pid": 4242, "create_time": 1700000000.5}
    assert ReplicaRecord.from_json(record.to_json()) == record
