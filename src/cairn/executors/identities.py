"""A uid of its own for every job, environment build and served version.

When the server runs as root, user code runs as uids taken from a range no user of the
password database has (`CAIRN_RUN_UID_RANGE`, 200000-265535 by default), all in the group
of the run-as user (`cairn-runner`). A job's replicas run as one uid, another job's as
another, so one job can neither read another's credential nor touch its files; what jobs
share (the buckets) is shared with the group.

Allocations survive restarts: each is a file `<state dir>/<uid>` holding its owner (e.g.
`jobs/PROJECT/JOB`), written atomically, so a restarted server knows which uids are taken
and re-adopts a running job under the uid it started with. Uids are handed out in turn
from a cursor kept beside them (`next`), deterministically, skipping any uid that is
allocated, that has a password database entry, or that a process still runs as; a released
uid comes round again only after every other one has. Releasing an owner's uid ends every
process still running as it first, so no leftover of one job lives on as the next.

The state directory records the home it belongs to: a server on a copy of the home starts
with no allocations rather than taking (and ending the processes of) the original's.

Several homes (several servers) on one machine share the uid range, so a uid is also
claimed machine-wide while it is allocated: an exclusive `flock` on
`/run/cairn/uids/<uid>`, held for as long as the allocation (and let go when the server
dies). A uid another live server holds is never handed out, even while its job is still
building and so runs no process yet, and only the holder ever ends processes running as it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import pwd
import threading
import weakref
from pathlib import Path

import psutil

from cairn.executors.run_as import RunAs, RunAsError

log = logging.getLogger(__name__)

DEFAULT_UID_RANGE = (200_000, 265_535)
# Where every server of this machine claims the uids it holds (a tmpfs: gone at reboot,
# with the processes).
DEFAULT_CLAIMS_DIR = Path("/run/cairn/uids")
_CURSOR = "next"
_HOME = "home"
# Rounds of "find every process of the uid, SIGKILL it": a process forking meanwhile is
# caught by the next round.
_KILL_ROUNDS = 20


class UidAllocator:
    """Hands out uids of `uids` to owners (jobs, builds, versions); thread-safe."""

    def __init__(
        self,
        base: RunAs,
        uids: range,
        state_dir: Path,
        *,
        home_id: str | None = None,
        claims_dir: Path = DEFAULT_CLAIMS_DIR,
    ) -> None:
        """`base`: the run-as user, whose group, home and reach every identity shares.
        `home_id`: the home the state belongs to (a copy's state is discarded).
        `claims_dir`: where the servers of this machine claim the uids they hold."""
        if not uids:
            raise RunAsError("The uid range for user code is empty.")
        self.base = base
        self.uids = uids
        self.state_dir = state_dir
        self.claims_dir = claims_dir
        self._lock = threading.Lock()
        self._by_owner: dict[str, int] = {}
        self._by_uid: dict[int, str] = {}
        self._claims: dict[int, int] = {}  # uid -> the descriptor holding its flock
        # Claims are let go when the allocator goes (or the process ends), not before.
        self._closer = weakref.finalize(self, _close_all, self._claims)
        self._load(home_id)

    # ----- handing out and taking back ----------------------------------------------------

    def allocate(self, owner: str) -> RunAs:
        """`owner`'s identity: the uid it holds, else the next free one (recorded at once)."""
        with self._lock:
            uid = self._by_owner.get(owner)
            if uid is None:
                uid = self._take_next(owner)
            return self.identity(uid)

    def adopt(self, owner: str, uid: int) -> RunAs:
        """Record that `owner` runs as `uid` (read from a run record after a restart)."""
        with self._lock:
            if self._by_owner.get(owner) != uid:
                previous = self._by_uid.get(uid)
                if previous is not None and previous != owner:
                    log.warning("uid %s was recorded for %s; %s runs as it", uid, previous, owner)
                    self._by_owner.pop(previous, None)
                self._forget(owner)
                self._record(uid, owner, replace=True)
            if uid not in self._claims and not self._claim(uid):
                # Another server holds it: this one never ends processes running as it.
                log.warning("uid %s of %s is held by another Cairn server", uid, owner)
            return self.identity(uid)

    def find(self, owner: str) -> RunAs | None:
        """`owner`'s identity if it holds a uid."""
        with self._lock:
            uid = self._by_owner.get(owner)
        return None if uid is None else self.identity(uid)

    def owners(self, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(owner for owner in self._by_owner if owner.startswith(prefix))

    def release(self, owner: str) -> int | None:
        """End every process still running as `owner`'s uid, then free the uid; returns it.

        Processes are ended only while this server holds the uid's machine-wide claim.
        """
        with self._lock:
            uid = self._by_owner.get(owner)
            held = uid in self._claims
        if uid is None:
            return None
        if held:
            end_processes_of(uid)  # still recorded and claimed meanwhile: nobody gets it
        with self._lock:
            if self._by_owner.get(owner) == uid:
                self._forget(owner)
        return uid

    def forget(self, owner: str) -> int | None:
        """Free `owner`'s uid without touching processes (they are not this server's)."""
        with self._lock:
            uid = self._by_owner.get(owner)
            self._forget(owner)
            return uid

    def close(self) -> None:
        """Let go of the machine-wide claims (allocations stay recorded for a restart)."""
        with self._lock:
            self._closer()

    def identity(self, uid: int) -> RunAs:
        return self.base.with_uid(uid)

    def open_the_way(self) -> list[Path]:
        """`RunAs.open_the_way` for the group every identity is in."""
        return self.base.open_the_way()

    # ----- internals ----------------------------------------------------------------------

    def _take_next(self, owner: str) -> int:
        busy = _uids_with_processes()
        count = len(self.uids)
        start = self._cursor()
        for step in range(count):
            index = (start + step) % count
            uid = self.uids[index]
            if uid in self._by_uid or uid in busy or _has_passwd_entry(uid):
                continue
            if not self._claim(uid):
                continue  # another server of this machine holds it
            if not self._record(uid, owner, replace=False):
                self._unclaim(uid)
                continue
            self._write(_CURSOR, str((index + 1) % count))
            return uid
        raise RunAsError(
            f"All {count} uids for user code ({self.uids.start}-{self.uids.stop - 1}) are "
            "in use. Wait for jobs or versions to end, or widen CAIRN_RUN_UID_RANGE."
        )

    def _record(self, uid: int, owner: str, *, replace: bool) -> bool:
        path = self.state_dir / str(uid)
        temporary = self.state_dir / f".{uid}.{os.getpid()}.{threading.get_ident()}.tmp"
        temporary.write_text(owner)
        try:
            if replace:
                os.replace(temporary, path)
            else:
                os.link(temporary, path)  # fails when the uid is taken: never two owners
        except FileExistsError:
            return False
        finally:
            temporary.unlink(missing_ok=True)
        self._by_owner[owner] = uid
        self._by_uid[uid] = owner
        return True

    def _forget(self, owner: str) -> None:
        uid = self._by_owner.pop(owner, None)
        if uid is not None and self._by_uid.get(uid) == owner:
            del self._by_uid[uid]
            (self.state_dir / str(uid)).unlink(missing_ok=True)
            self._unclaim(uid)

    def _claim(self, uid: int) -> bool:
        """Take the machine-wide claim on `uid`; False when another server holds it.

        Claim files are never removed (removing one races with a server about to lock it).
        """
        fd = os.open(self.claims_dir / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        self._claims[uid] = fd
        return True

    def _unclaim(self, uid: int) -> None:
        fd = self._claims.pop(uid, None)
        if fd is not None:
            os.close(fd)  # lets the flock go

    def _cursor(self) -> int:
        try:
            return int((self.state_dir / _CURSOR).read_text()) % len(self.uids)
        except (FileNotFoundError, ValueError):
            return 0

    def _write(self, name: str, text: str) -> None:
        temporary = self.state_dir / f".{name}.{os.getpid()}.tmp"
        temporary.write_text(text)
        os.replace(temporary, self.state_dir / name)

    def _load(self, home_id: str | None) -> None:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            recorded = (self.state_dir / _HOME).read_text()
        except FileNotFoundError:
            recorded = None
        if home_id is not None and recorded is not None and recorded != home_id:
            # A copy of another home: those uids run the original's processes, not ours.
            for entry in self.state_dir.iterdir():
                if entry.name != _CURSOR:
                    entry.unlink()
        if home_id is not None:
            self._write(_HOME, home_id)
        self.claims_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for entry in self.state_dir.iterdir():
            if not entry.name.isdigit():
                continue
            uid = int(entry.name)
            try:
                owner = entry.read_text()
            except OSError:
                continue
            self._by_owner[owner] = uid
            self._by_uid[uid] = owner
            if not self._claim(uid):
                # Another server took the uid while this one was down: it is no longer ours
                # (a job re-adopted later keeps it, without this server ever ending it).
                log.warning("uid %s of %s is held by another Cairn server", uid, owner)


def _close_all(claims: dict[int, int]) -> None:
    while claims:
        _, fd = claims.popitem()
        with contextlib.suppress(OSError):
            os.close(fd)


def end_processes_of(uid: int) -> None:
    """SIGKILL every process running as `uid` (real, effective or saved), until none is left."""
    for _ in range(_KILL_ROUNDS):
        found = [
            process for process in psutil.process_iter(["uids", "status"]) if _runs_as(process, uid)
        ]
        if not found:
            return
        for process in found:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(found, timeout=2.0)
    log.warning("processes running as uid %s outlived %s rounds of SIGKILL", uid, _KILL_ROUNDS)


def _runs_as(process: psutil.Process, uid: int) -> bool:
    uids = process.info.get("uids")
    # A zombie runs nothing; its parent reaps it (signals cannot).
    return uids is not None and uid in uids and process.info.get("status") != psutil.STATUS_ZOMBIE


def _uids_with_processes() -> set[int]:
    found: set[int] = set()
    for process in psutil.process_iter(["uids", "status"]):
        uids = process.info.get("uids")
        if uids is not None and process.info.get("status") != psutil.STATUS_ZOMBIE:
            found.update(uids)
    return found


def _has_passwd_entry(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def passwd_users_in(uids: range) -> list[str]:
    """Users of the password database whose uid lies in `uids` ("name (uid)")."""
    return [f"{e.pw_name} ({e.pw_uid})" for e in pwd.getpwall() if e.pw_uid in uids]
