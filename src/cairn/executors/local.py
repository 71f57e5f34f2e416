"""Replicas as local processes, each under the replica shim in a session of its own."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from cairn.executors.acl import SEARCH
from cairn.executors.base import (
    DEFAULT_GRACE_S,
    LOCAL,
    Executor,
    LaunchSpec,
    ReplicaLost,
    ReplicaProcess,
    ReplicaRecord,
)
from cairn.executors.exit_status import read_exit_status
from cairn.executors.process_tree import group_members, is_running, terminate_tree
from cairn.executors.run_as import RunAs

# After the wrapper is gone, how long to wait for its exit file before calling it lost
# (the file is written before the wrapper exits, so this only covers slow filesystems).
_EXIT_FILE_WAIT_S = 1.0


def shim_argv(spec: LaunchSpec) -> list[str]:
    """The command line that runs `spec.argv` under the replica shim."""
    return [
        sys.executable,
        "-m",
        "cairn.executors.replica_shim",
        "--log",
        str(spec.log_path),
        "--stderr-log",
        str(spec.stderr_path),
        "--exit-file",
        str(spec.exit_path),
        *(["--times", str(spec.times_path)] if spec.times_path is not None else []),
        "--",
        *spec.argv,
    ]


class LocalProcess(ReplicaProcess):
    """A replica wrapper process on this machine, launched by us or adopted after a restart."""

    def __init__(self, record: ReplicaRecord, popen: subprocess.Popen[bytes] | None) -> None:
        self.record = record
        # The wrapper's pid, and its creation time so that a reused pid is not mistaken.
        self.pid = int(record.handle["pid"])
        self.create_time = float(record.handle["create_time"])
        self._popen = popen  # None when adopted: we are not the parent, so no waitpid
        self._gone_since: float | None = None

    def _wrapper_running(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return is_running(self.pid, self.create_time)

    def poll(self) -> int | None:
        code = read_exit_status(Path(self.record.exit_path))
        if code is not None:
            if self._popen is not None:
                self._popen.poll()  # reap the wrapper so it does not linger as a zombie
            return code
        if self._wrapper_running():
            return None
        # The wrapper ended without an exit file: give the file a moment, then give up.
        now = time.monotonic()
        if self._gone_since is None:
            self._gone_since = now
        code = read_exit_status(Path(self.record.exit_path))
        if code is not None:
            return code
        if now - self._gone_since < _EXIT_FILE_WAIT_S:
            return None
        raise ReplicaLost(
            f"The process of replica {self.record.name} ended without recording an exit "
            "status (it was killed together with Cairn's replica wrapper)."
        )

    def is_alive(self) -> bool:
        return self._wrapper_running()

    def terminate(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        if self._wrapper_running():
            terminate_tree(self.pid, grace_s=grace_s, leader_of_group=True)
        else:
            # The wrapper is gone (its pid may even be someone else's now): only its process
            # group, which outlives it while any member lives, may still hold grandchildren.
            for proc in group_members(self.pid):
                terminate_tree(proc.pid, grace_s=grace_s, leader_of_group=False)
        if self._popen is not None:
            self._popen.poll()


class LocalProcessExecutor(Executor):
    """Runs each replica as a child process tree on this machine.

    With a run-as user (`spec.run_as`, else `run_as`), the replica (its wrapper included)
    runs as that user, who owns its working directory, its exit file's directory and its
    two log files (mode 0700/0600: no other user, its group included, gets in). The
    directories holding the logs stay the server's, so user code can never swap a log for
    a link to a secret that the server would then read back to the API.
    """

    kind = LOCAL

    def __init__(self, run_as: RunAs | None = None) -> None:
        self._run_as = run_as

    def launch(self, spec: LaunchSpec) -> LocalProcess:
        for path in (spec.log_path, spec.stderr_path, spec.exit_path, spec.times_path):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        spec.exit_path.unlink(missing_ok=True)
        spec.cwd.mkdir(parents=True, exist_ok=True)
        run_as = spec.run_as or self._run_as
        if run_as is not None:
            self._share_with_replica(spec, run_as)
        popen = subprocess.Popen(
            shim_argv(spec),
            cwd=spec.cwd,
            env=dict(spec.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **(run_as.popen_options() if run_as is not None else {}),
        )
        try:
            create_time = psutil.Process(popen.pid).create_time()
        except psutil.Error:
            create_time = time.time()  # it already ended; the exit file will tell how
        record = ReplicaRecord(
            name=spec.name,
            executor=LOCAL,
            handle={"pid": popen.pid, "create_time": create_time},
            log_path=str(spec.log_path),
            stderr_path=str(spec.stderr_path),
            exit_path=str(spec.exit_path),
        )
        return LocalProcess(record, popen)

    @staticmethod
    def _share_with_replica(spec: LaunchSpec, run_as: RunAs) -> None:
        run_as.open_the_way()
        for directory in (spec.cwd, spec.exit_path.parent):
            run_as.give(directory, 0o700)
        for log in (spec.log_path, spec.stderr_path, spec.times_path):
            if log is None:
                continue
            log.touch()
            run_as.give(log, 0o600)
            run_as.grant(log.parent, SEARCH)  # to open the log, not to list or change it

    def adopt(self, record: ReplicaRecord) -> LocalProcess | None:
        if record.executor != LOCAL or "pid" not in record.handle:
            return None  # another executor's replica: not a process of this machine
        ended = read_exit_status(Path(record.exit_path)) is not None
        process = LocalProcess(record, None)
        if ended or is_running(process.pid, process.create_time):
            return process
        return None
