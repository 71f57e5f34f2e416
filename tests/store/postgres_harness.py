"""A throwaway PostgreSQL cluster for tests, reusable from any test folder.

    from tests.store.postgres_harness import postgres_cluster_or_skip_reason, start_cluster

`start_cluster()` runs initdb in a fresh, uniquely named temporary directory (owned by the
`postgres` user when the tests run as root, because initdb refuses root), starts `postgres`
on a free 127.0.0.1 port with its socket in that directory, and returns a `PostgresCluster`
whose `create_database()` hands out new, empty databases by URL. `stop()` shuts the server
down and deletes the directory. A cluster left behind by a killed test run never blocks a
later one: each run uses its own directory and port, and leftovers whose server is gone are
removed on the next start.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

POSTGRES_BIN_DIRS = (
    os.environ.get("CAIRN_TEST_POSTGRES_BIN", ""),
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/14/bin",
)
_OS_USER = "postgres"
_DB_SUPERUSER = "postgres"
_DIR_PREFIX = "cairn-pg-"
_STALE_AFTER_S = 3600


def find_bin_dir() -> Path | None:
    """The first directory holding initdb, pg_ctl and postgres."""
    for candidate in POSTGRES_BIN_DIRS:
        if candidate and all((Path(candidate) / tool).is_file() for tool in _TOOLS):
            return Path(candidate)
    return None


_TOOLS = ("initdb", "pg_ctl", "postgres")


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if find_bin_dir() is None:
        dirs = ", ".join(d for d in POSTGRES_BIN_DIRS if d)
        return f"PostgreSQL binaries (initdb, pg_ctl, postgres) not found in {dirs}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_OS_USER)
        except KeyError:
            return "running as root and there is no 'postgres' OS user for initdb to run as"
        if shutil.which("runuser") is None:
            return "running as root and 'runuser' is missing to run initdb as 'postgres'"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg package is not installed"
    return None


@dataclass
class PostgresCluster:
    """A running server; `url(db)` names a database on it for SQLAlchemy."""

    bin_dir: Path
    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{_DB_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (named `name` or a fresh unique one); return its URL."""
        import psycopg

        name = name or f"cairn_{uuid.uuid4().hex[:12]}"
        dsn = f"host=127.0.0.1 port={self.port} user={_DB_SUPERUSER} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (immediate shutdown: nothing here needs keeping) and delete its files."""
        _run_as_owner(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"],
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> PostgresCluster:
    """initdb + start on 127.0.0.1; raises RuntimeError (with the server log) on failure."""
    reason = missing_reason()
    if reason is not None:
        raise RuntimeError(reason)
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    base = Path("/tmp") if os.geteuid() == 0 else Path(tempfile.gettempdir())
    remove_stale_clusters(base)
    root = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX, dir=base))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(_OS_USER)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data_dir = root / "data"
    _run_as_owner(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            _DB_SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
    )
    last_error = ""
    for _attempt in range(5):  # a free port can be taken between probing and binding
        port = _free_port()
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -F -c max_connections=200"
        result = _run_as_owner(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data_dir),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=False,
        )
        if result.returncode == 0:
            return PostgresCluster(bin_dir=bin_dir, root=root, port=port)
        log = root / "server.log"
        last_error = log.read_text(errors="replace")[-2000:] if log.exists() else result.stderr
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL would not start:\n{last_error}")


def remove_stale_clusters(base: Path) -> None:
    """Delete leftover cluster directories (older than an hour) whose server is not running."""
    now = time.time()
    for leftover in base.glob(f"{_DIR_PREFIX}*"):
        try:
            if now - leftover.stat().st_mtime < _STALE_AFTER_S or _server_alive(leftover):
                continue
        except OSError:
            continue
        shutil.rmtree(leftover, ignore_errors=True)


def _server_alive(root: Path) -> bool:
    pid_file = root / "data" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as_owner(command: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool as the `postgres` user when we are root, else as ourselves."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", _OS_USER, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result
