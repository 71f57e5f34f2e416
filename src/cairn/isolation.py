"""Keeping user code away from the server's rights.

When `cairn server` runs as root, trainer packages (pip builds included), replicas and
prediction nodes run as an unprivileged user (`Settings.run_as_user`, else `cairn-runner`,
created when missing). That user gets exactly what user code needs, through POSIX ACL
entries naming it (`cairn.executors.acl`):

| path | the run-as user may | why |
|---|---|---|
| `<home>` | pass through (no listing) | to reach the directories below |
| `storage/` | read and write, inherited | trainers read data and write models (`gs://`) |
| `envs/` | pass through; read and write inherited | pip (as that user) builds environments |
| `models/` | pass through; read inherited | nodes load the copies of deployed versions |
| `jobs/` | pass through, inherited | runners open up `work/`, exit files, logs per run |
| `serving/` | pass through | nodes bind their sockets in `serving/sockets/` |

Everything else in the home (`cairn.db*`, `server.lock`, `home-id`, `credentials/`,
`uploads/`, node logs) is made private to the server, and the server's umask becomes 077 so
what it creates later stays private too. Directories above the home, and those holding
Cairn's interpreter and code, get a "pass through" entry for the user where it lacks one.
A non-root server cannot switch users: it says so at start-up and runs user code as itself.
"""

from __future__ import annotations

import getpass
import os
import stat
import subprocess
import sys
import sysconfig
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path

import cairn
from cairn.config import Settings
from cairn.executors import RunAs, ensure_user, user_code_environment
from cairn.executors.acl import (
    READ,
    SEARCH,
    WRITE,
    AclUnsupported,
    grant_user_tree,
    user_grant,
)

ALL = READ | WRITE | SEARCH

NOT_ROOT_WARNING = (
    "Warning: Cairn is not running as root, so it cannot switch users: trainers and models "
    "run as {user}, with this server's rights over its files and credentials. Start it as "
    "root to run them as an unprivileged user instead."
)

# What the run-as user may do on the directory itself, and on what is created in it later.
_SHARING = {
    "storage_root": (ALL, ALL),
    "envs_root": (SEARCH, ALL),
    "models_root": (SEARCH, READ | SEARCH),
    "jobs_root": (SEARCH, SEARCH),
}

# Run as the run-as user at start-up: can it run Cairn's Python and reach its directories?
_PROBE = textwrap.dedent(
    """
    import os, sys
    import cairn.executors.replica_shim, cairn.serving.node
    for directory in sys.argv[1:]:
        os.stat(directory)
    probe = os.path.join(sys.argv[1], f".cairn-probe-{os.getpid()}")
    open(probe, "w").close()
    os.unlink(probe)
    """
)


class IsolationError(Exception):
    """User code cannot be isolated as configured; the message says what to do."""


@dataclass(frozen=True)
class Isolation:
    """Who runs user code, and what the operator should be told at start-up."""

    run_as: RunAs | None  # None: user code runs as the server's own user
    notices: list[str] = field(default_factory=list)


def isolate_user_code(settings: Settings) -> Isolation:
    """Set the home up so user code runs unprivileged (when root); call with the lock held."""
    if os.geteuid() != 0:
        return Isolation(None, [NOT_ROOT_WARNING.format(user=getpass.getuser())])
    try:
        run_as = replace(
            ensure_user(settings.run_as_user), reaches=_paths_user_code_needs(settings)
        )
        os.umask(0o077)
        share_home(settings, run_as)
        opened = run_as.open_the_way()
    except AclUnsupported as error:
        raise IsolationError(
            f"{error.filename} is on a file system without POSIX ACLs, which Cairn needs to "
            "share job files with the run-as user alone. Put the home on one that has them "
            "(ext4, xfs, btrfs, tmpfs), or run the server as a non-root user."
        ) from None
    except OSError as error:
        raise IsolationError(
            f"Cairn could not share its home with the run-as user: {error}."
        ) from None
    _probe(settings, run_as)
    notices = []
    if opened:
        notices.append(
            f"Gave {run_as.name} pass-through access (ACL) to "
            f"{', '.join(str(p) for p in opened)} so it can reach Cairn and its home."
        )
    return Isolation(run_as, notices)


def share_home(settings: Settings, run_as: RunAs) -> None:
    """Make the home private to the server, then let `run_as` in where user code works."""
    home = settings.home
    shared = {Path(getattr(settings, name)): perms for name, perms in _SHARING.items()}
    for path in shared:
        path.mkdir(parents=True, exist_ok=True)
    for entry in home.iterdir():
        mode = entry.lstat().st_mode
        if not stat.S_ISLNK(mode):
            entry.chmod(stat.S_IMODE(mode) & 0o700)
    home.chmod(0o700)
    run_as.grant(home, SEARCH)
    for path, (own, inherited) in shared.items():
        if user_grant(path, run_as.uid, inherited=True) != inherited:
            # First start with this user: what the tree already holds becomes its too.
            grant_user_tree(path, run_as.uid, inherited)
        run_as.grant(path, own)


def _paths_user_code_needs(settings: Settings) -> tuple[Path, ...]:
    """The home, Cairn's interpreter (the venv and the Python it links to) and its code."""
    interpreter = Path(sys.executable)
    places = [settings.home, interpreter, interpreter.resolve(), Path(cairn.__file__).parent]
    places += [Path(p) for p in (sys.prefix, sys.base_prefix, *sysconfig.get_paths().values())]
    return tuple(dict.fromkeys(Path(os.path.abspath(p)) for p in places))


def _probe(settings: Settings, run_as: RunAs) -> None:
    directories = [settings.storage_root, settings.jobs_root, settings.envs_root]
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, *map(str, directories)],
            env=run_as.environment(user_code_environment()),
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **run_as.popen_options(),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise IsolationError(f"Cairn could not start a process as {run_as.name}: {error}") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise IsolationError(
            f"The run-as user {run_as.name} cannot run Cairn ({lines[-1] if lines else ''}). "
            f"Let it read {sys.prefix} and Cairn's code, or choose another user with "
            "--run-as-user."
        )
