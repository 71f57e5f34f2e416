"""Making a real directory refuse writes, for tests of what the server does then."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """`directory` refuses new entries inside the block.

    Permission bits do not stop root, so as root the directory is made immutable
    (`chattr +i`); where neither works the test is skipped rather than passing falsely.
    """
    as_root = os.geteuid() == 0
    if as_root:
        chattr = shutil.which("chattr")
        if chattr is None or _run(chattr, "+i", directory) != 0:
            pytest.skip("cannot make a directory read-only for root here (chattr +i failed)")
    else:
        mode = directory.stat().st_mode
        directory.chmod(0o555)
    try:
        if _writable(directory):
            pytest.skip(f"{directory} still accepts writes; cannot test a read-only storage")
        yield
    finally:
        if as_root:
            _run(str(shutil.which("chattr")), "-i", directory)
        else:
            directory.chmod(mode)


def _run(*command: object) -> int:
    return subprocess.run([str(part) for part in command], capture_output=True).returncode


def _writable(directory: Path) -> bool:
    probe = directory / f".probe-{uuid.uuid4().hex}"
    try:
        probe.touch()
    except OSError:
        return False
    probe.unlink()
    return True
