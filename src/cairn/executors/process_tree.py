"""Ending a replica's whole process tree, grandchildren included.

Replicas start in a session of their own, so one signal to the process group reaches
everything they spawned; psutil also collects descendants that left the group
(a trainer may call `setsid` itself) so nothing survives a cancel.
"""

from __future__ import annotations

import contextlib
import os
import signal

import psutil


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return []
    try:
        descendants = root.children(recursive=True)
    except psutil.Error:
        descendants = []
    return [root, *descendants]


def group_members(pgid: int) -> list[psutil.Process]:
    """Processes in process group `pgid` (some may have lost their parent link already)."""
    members = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
    return members


def _signal_all(processes: list[psutil.Process], pgid: int | None, sig: int) -> None:
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def terminate_tree(pid: int, *, grace_s: float, leader_of_group: bool = True) -> None:
    """SIGTERM the tree rooted at `pid` (and its process group), SIGKILL what outlives `grace_s`.

    `leader_of_group` says `pid` was started with `start_new_session=True`, so its pid is
    also its process-group id and signalling the group is safe.
    """
    pgid = pid if leader_of_group else None
    processes = _tree(pid)
    if pgid is not None:
        known = {p.pid for p in processes}
        processes += [p for p in group_members(pgid) if p.pid not in known]
    if not processes:
        return
    _signal_all(processes, pgid, signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    # Descendants spawned during the grace period are caught here too.
    for proc in list(alive):
        with contextlib.suppress(psutil.Error):
            alive.extend(c for c in proc.children(recursive=True) if c not in alive)
    if alive:
        _signal_all(alive, pgid, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=grace_s)


def is_running(pid: int, create_time: float | None = None) -> bool:
    """Whether `pid` runs (not a zombie) and, if given, was created at `create_time`."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.5:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
