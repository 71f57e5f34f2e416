"""Keeping user code away from the server's rights, and jobs away from one another.

When `cairn server` runs as root, trainer packages (pip builds included), replicas and
prediction nodes run unprivileged: every job, every environment build and every served
version as a uid of its own (`cairn.executors.identities`, from `Settings.run_uid_range`),
all in the group of the run-as user (`Settings.run_as_user`, else `cairn-runner`, created
when missing). The group gets what all user code shares, through POSIX ACL entries naming
it (`cairn.executors.acl`); what is one job's alone is owned by that job's uid.

| path | the group may | why |
|---|---|---|
| `<home>` | pass through (no listing) | to reach the directories below |
| `storage/` | read and write, inherited | trainers read data and write models (`gs://`) |
| `envs/` | pass through | environments are sealed: the group reads them, nobody writes |
| `runtimes/` | pass through | runtime environments, sealed like `envs/` |
| `models/` | pass through; read inherited | nodes load the copies of deployed versions |
| `jobs/`, `jobs/<project>/` | pass through | each run directory lets its own job's uid alone in |
| `serving/`, `serving/sockets/` | pass through | each version's uid owns `sockets/<uid>/` |

Everything else in the home (`cairn.db*`, `server.lock`, `home-id`, `credentials/`,
`uploads/`, `identities/`, node logs) is made private to the server, and the server's umask
becomes 077 so what it creates later stays private too. Directories above the home, and
those holding Cairn's interpreter and code, get a "pass through" entry for the group where
they lack one. A non-root server cannot switch users: it says so at start-up and runs user
code as itself.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import sysconfig
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path

import cairn
from cairn.config import Settings
from cairn.executors import RunAs, RunAsError, UidAllocator, ensure_user, user_code_environment
from cairn.executors.acl import (
    READ,
    SEARCH,
    WRITE,
    AclUnsupported,
    grant_group,
    grant_group_tree,
    group_grant,
    make_private,
    remove_default,
)
from cairn.executors.identities import passwd_users_in
from cairn.home_identity import home_id

ALL = READ | WRITE | SEARCH

NOT_ROOT_WARNING = (
    "Warning: Cairn is not running as root, so it cannot switch users: trainers and models "
    "run as {user}, with this server's rights over its files and credentials. Start it as "
    "root to run them as an unprivileged user instead."
)

# What the group of user code may do on the directory itself, and on what is created in it
# later (None: nothing; a home set up when all user code ran as one user loses its
# inherited entries there).
_SHARING: dict[str, tuple[int, int | None]] = {
    "storage_root": (ALL, ALL),
    "envs_root": (SEARCH, None),
    "runtimes_root": (SEARCH, None),  # runtime environments, sealed as envs/ (docs/runtimes.md)
    "models_root": (SEARCH, READ | SEARCH),
    "jobs_root": (SEARCH, None),
}

# Run as a uid of the range at start-up: can it run Cairn's Python and reach its directories?
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


_PROBE_OWNER = "probe"


class IsolationError(Exception):
    """User code cannot be isolated as configured; the message says what to do."""


@dataclass(frozen=True)
class Isolation:
    """Who runs user code, and what the operator should be told at start-up."""

    # Where each job's, build's and version's uid comes from; None: user code runs as the
    # server's own user.
    identities: UidAllocator | None
    notices: list[str] = field(default_factory=list)

    @property
    def run_as(self) -> RunAs | None:
        """The run-as user, whose group every uid of user code is in."""
        return self.identities.base if self.identities is not None else None


def isolate_user_code(settings: Settings) -> Isolation:
    """Set the home up so user code runs unprivileged (when root); call with the lock held."""
    if os.geteuid() != 0:
        return Isolation(None, [NOT_ROOT_WARNING.format(user=getpass.getuser())])
    try:
        run_as = replace(ensure_user(settings.run_as_user), reaches=paths_user_code_needs(settings))
        uids = _uid_range(settings, run_as)
        os.umask(0o077)
        share_home(settings, run_as)
        opened = run_as.open_the_way()
        identities = UidAllocator(
            run_as, uids, settings.identities_root, home_id=home_id(settings.home)
        )
    except RunAsError as error:
        raise IsolationError(str(error)) from None
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
    _probe(settings, identities)
    notices = []
    if opened:
        notices.append(
            f"Gave the group {run_as.name} pass-through access (ACL) to "
            f"{', '.join(str(p) for p in opened)} so user code can reach Cairn and its home."
        )
    return Isolation(identities, notices)


def _uid_range(settings: Settings, run_as: RunAs) -> range:
    first, last = settings.run_uid_range
    uids = range(first, last + 1)
    taken = passwd_users_in(uids)
    if run_as.uid in uids and not taken:
        taken = [f"{run_as.name} ({run_as.uid})"]
    if taken:
        raise RunAsError(
            f"The uids for user code ({first}-{last}, CAIRN_RUN_UID_RANGE) include users of "
            f"this machine: {', '.join(taken[:5])}. Choose a range no user has."
        )
    return uids


def share_home(settings: Settings, run_as: RunAs) -> None:
    """Make the home private to the server, then let `run_as`'s group in where user code
    works (every uid of user code is in that group)."""
    home = settings.home
    group = run_as.gid
    shared = {Path(getattr(settings, name)): perms for name, perms in _SHARING.items()}
    for path in shared:
        path.mkdir(parents=True, exist_ok=True)
    # Without a moment's gap for the group: replicas adopted after a restart keep working.
    for entry in (home, *home.iterdir()):
        if not entry.is_symlink():
            make_private(entry)
    grant_group(home, group, SEARCH)
    for path, (own, inherited) in shared.items():
        if inherited is None:
            remove_default(path)
        elif group_grant(path, group, inherited=True) != inherited:
            # First start with this group: what the tree already holds becomes its too.
            grant_group_tree(path, group, inherited)
        grant_group(path, group, own)


def paths_user_code_needs(settings: Settings) -> tuple[Path, ...]:
    """The home, Cairn's interpreter (the venv and the Python it links to) and its code."""
    interpreter = Path(sys.executable)
    places = [settings.home, interpreter, interpreter.resolve(), Path(cairn.__file__).parent]
    places += [Path(p) for p in (sys.prefix, sys.base_prefix, *sysconfig.get_paths().values())]
    return tuple(dict.fromkeys(Path(os.path.abspath(p)) for p in places))


def _probe(settings: Settings, identities: UidAllocator) -> None:
    directories = [settings.storage_root, settings.jobs_root, settings.envs_root]
    run_as = identities.allocate(_PROBE_OWNER)
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
        raise IsolationError(
            f"Cairn could not start a process as uid {run_as.uid}: {error}"
        ) from None
    finally:
        identities.release(_PROBE_OWNER)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise IsolationError(
            f"User code (uid {run_as.uid}, group {identities.base.name}) cannot run Cairn "
            f"({lines[-1] if lines else ''}). Let the group read {sys.prefix} and Cairn's "
            "code, or choose another user with --run-as-user."
        )
