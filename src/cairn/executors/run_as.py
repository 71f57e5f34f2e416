"""The unprivileged OS identities that run user code when the server runs as root.

`RunAs` is one of them: a uid with the group of the run-as user (`cairn-runner`). Each job,
each environment build (pip runs `setup.py`, which is user code) and each served version
gets a uid of its own from `cairn.executors.identities`; subprocess drops the server's
user, group and supplementary groups in the child before it execs, so not one instruction
of user code runs as root.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.executors.acl import SEARCH, grant_group, grant_user, group_grant

DEFAULT_RUNNER_USER = "cairn-runner"

# The server's own settings (a database URL may hold a password) are not user code's business.
_SERVER_ONLY_PREFIX = "CAIRN_"
# Nor is the server's own Google credential: a job gets its own, a prediction node none, and
# Google's clients in user code reach Cairn (executors/google_clients) with what they get.
_SERVER_ONLY = frozenset({"GOOGLE_APPLICATION_CREDENTIALS"})


class RunAsError(Exception):
    """The run-as user cannot be found or created; the message says what to do."""


@dataclass(frozen=True)
class RunAs:
    """An OS user (with its group) that child processes switch to before they exec.

    The uid need not have a password database entry: the per-job uids have none.
    """

    name: str
    uid: int
    gid: int
    home: str  # from the password database; it need not exist
    # Paths user code must be able to reach: the server's home, Cairn's interpreter and code.
    reaches: tuple[Path, ...] = ()

    def open_the_way(self) -> list[Path]:
        """Let this user's group pass through every directory above `reaches` that would
        stop it; returns the directories changed.

        The entries name the group, not the user, so the per-job uids (all in that group)
        share them instead of adding one entry per job to directories outside Cairn's home.
        Called before user code starts, not only at start-up: those directories can change
        meanwhile (pytest resets the group bits of its temporary root, which silences ACL
        entries).
        """
        opened: list[Path] = []
        for directory in sorted({parent for path in self.reaches for parent in path.parents}):
            if os.stat(directory).st_mode & stat.S_IXOTH:
                continue
            granted = group_grant(directory, self.gid) or 0
            if not granted & SEARCH:
                grant_group(directory, self.gid, granted | SEARCH)
                opened.append(directory)
        return opened

    def popen_options(self) -> dict[str, Any]:
        """Keyword arguments for `subprocess.Popen` that start the child as this user."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def environment(self, env: Mapping[str, str], home: Path | None = None) -> dict[str, str]:
        """`env` with HOME, USER and LOGNAME of this user (HOME: `home` when given)."""
        return {
            **env,
            "HOME": str(home) if home is not None else self.home,
            "USER": self.name,
            "LOGNAME": self.name,
        }

    def grant(self, path: Path, perms: int, *, inherit: bool = False) -> None:
        """Let this user (and nobody else) access `path` with `perms` (see `acl`)."""
        grant_user(path, self.uid, perms, inherit=inherit)

    def give(self, path: Path, mode: int | None = None) -> None:
        """Make this user the owner of `path` (with `mode`, e.g. 0o700: its alone)."""
        os.chown(path, self.uid, self.gid, follow_symlinks=False)
        if mode is not None:
            os.chmod(path, mode)

    def with_uid(self, uid: int) -> RunAs:
        """The identity `uid` in this user's group, reaching what this user reaches."""
        return RunAs(f"{self.name}-{uid}", uid, self.gid, self.home, self.reaches)


def user_code_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment user code inherits: the server's, minus Cairn's own settings and
    credential."""
    source = os.environ if env is None else env
    return {
        k: v
        for k, v in source.items()
        if not k.startswith(_SERVER_ONLY_PREFIX) and k not in _SERVER_ONLY
    }


def find_user(name: str) -> RunAs:
    """The existing user `name`; RunAsError when it is missing or is root."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise RunAsError(
            f"The run-as user {name!r} does not exist. Create it (useradd --system {name}) "
            f"or leave --run-as-user unset to let Cairn create {DEFAULT_RUNNER_USER!r}."
        ) from None
    if entry.pw_uid == 0:
        raise RunAsError(
            f"The run-as user {name!r} is root; user code must run as an unprivileged user."
        )
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def ensure_user(name: str | None) -> RunAs:
    """The user `name`, or Cairn's own `cairn-runner`, created when missing (needs root)."""
    if name:
        return find_user(name)
    try:
        return find_user(DEFAULT_RUNNER_USER)
    except RunAsError:
        pass
    command = [
        "useradd",
        "--system",
        "--user-group",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        DEFAULT_RUNNER_USER,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise RunAsError(
            f"Cairn could not create the user {DEFAULT_RUNNER_USER!r} for user code "
            f"({error.strerror}). Create an unprivileged user yourself and pass it with "
            "--run-as-user (or CAIRN_RUN_AS_USER)."
        ) from None
    # Exit status 9: another server created it first, which is just as good.
    if done.returncode not in (0, 9):
        raise RunAsError(
            f"Cairn could not create the user {DEFAULT_RUNNER_USER!r} for user code: "
            f"{done.stderr.strip() or f'useradd exited with {done.returncode}'}. Create an "
            "unprivileged user yourself and pass it with --run-as-user."
        )
    return find_user(DEFAULT_RUNNER_USER)
