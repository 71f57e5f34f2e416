"""The wrapper every replica runs under: `python -m cairn.executors.replica_shim ...`.

It runs the user command, copies its stdout and stderr into the replica's log (stderr
also into a file of its own, for error messages) and writes the exit code to a file.
Because the exit code lands in a file rather than only in `waitpid`, a server that
restarted (and so is no longer the parent) can still learn how the replica ended.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

import psutil

from cairn.executors.exit_status import write_exit_status

# How long to keep copying output after the user command exits: a grandchild that
# inherited the pipes must not keep the replica from reporting its exit code.
_DRAIN_TIMEOUT_S = 3.0


# Bytes copied per read: output arrives as it is written, lines or not (progress bars
# drawn with \r, or one enormous line, never pile up in memory).
_CHUNK = 65536
_PR_SET_CHILD_SUBREAPER = 36


def _copy(
    source: BinaryIO, sinks: list[BinaryIO], lock: threading.Lock, times: BinaryIO | None = None
) -> None:
    """Copy whole lines (or a full chunk of one endless line) so streams interleave cleanly."""
    # Stop signals go to the main thread alone: delivered here instead, they would not wake
    # its wait for the child, which could then return before the handler has said "being
    # stopped", and the status would be written only after a drain a SIGKILL may cut short.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    read = getattr(source, "read1", source.read)
    pending = b""
    while chunk := read(_CHUNK):
        pending += chunk
        cut = max(pending.rfind(b"\n"), pending.rfind(b"\r")) + 1
        if cut == 0:
            if len(pending) < _CHUNK:
                continue
            cut = len(pending)
        _write(sinks, pending[:cut], lock, times)
        pending = pending[cut:]
    if pending:
        _write(sinks, pending, lock, times)


def _write(
    sinks: list[BinaryIO], data: bytes, lock: threading.Lock, times: BinaryIO | None = None
) -> None:
    with lock:
        # When the bytes of the log (the first sink) up to here arrived: readers merge the
        # logs of a job's replicas in time order by these stamps. Taken before the write,
        # so a line another replica prints after seeing this one in the log stamps later.
        arrived = time.time()
        for sink in sinks:
            sink.write(data)
            sink.flush()
        if times is not None:
            times.write(f"{sinks[0].tell()} {arrived:.6f}\n".encode())
            times.flush()


def _adopt_orphans() -> None:
    """Become the parent of every process the replica leaves behind, daemons included.

    A double-forked daemon leaves the process group and its parent; as a subreaper the
    wrapper still finds it among its descendants and ends it with the replica.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _end_leftovers(grace_s: float = 2.0) -> None:
    """End and reap whatever the replica started and did not stop itself."""
    leftovers = psutil.Process().children(recursive=True)
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(leftovers, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=grace_s)


def run(
    argv: list[str],
    log_path: Path,
    stderr_path: Path,
    exit_path: Path,
    times_path: Path | None = None,
) -> int:
    """Run `argv`, capture its output, record and return its exit code."""
    lock = threading.Lock()
    _adopt_orphans()
    with (
        open(log_path, "ab") as log,
        open(stderr_path, "ab") as err,
        open(times_path or os.devnull, "ab") as times,
    ):
        stamps = times if times_path is not None else None
        try:
            child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            message = f"Cairn could not start the replica command {argv[0]!r}: {exc}\n"
            for sink in (log, err):
                sink.write(message.encode())
            write_exit_status(exit_path, 127)
            return 127

        # A stop request reaches the whole process group; the wrapper stays to record
        # how the user command ended instead of dying first.
        stopping = threading.Event()

        def forward(signum: int, _frame: object) -> None:
            stopping.set()
            if child.poll() is None:
                child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        assert child.stdout is not None and child.stderr is not None
        readers = [
            threading.Thread(target=_copy, args=(child.stdout, [log], lock, stamps), daemon=True),
            threading.Thread(
                target=_copy, args=(child.stderr, [log, err], lock, stamps), daemon=True
            ),
        ]
        for reader in readers:
            reader.start()
        code = child.wait()
        recorded = stopping.is_set()
        if recorded:
            # Being stopped: record the status now, before a SIGKILL can cut the drain short.
            write_exit_status(exit_path, code)
        _end_leftovers()
        drain_until = time.monotonic() + _DRAIN_TIMEOUT_S
        for reader in readers:
            reader.join(timeout=max(0.0, drain_until - time.monotonic()))
    if not recorded:
        # Written after the output is drained, so whoever reads the exit status also
        # finds the last lines of stderr in place. (A stop signal that arrives only now,
        # after the user command ended, must not leave the status unwritten.)
        write_exit_status(exit_path, code)
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--stderr-log", type=Path, required=True)
    parser.add_argument("--exit-file", type=Path, required=True)
    parser.add_argument("--times", type=Path, help="where to stamp the log's arrival times")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the replica command after --")
    code = run(command, args.log, args.stderr_log, args.exit_file, args.times)
    # Mirror the user command's status, signals as 128+N like a shell does.
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
