"""Settings: the one place that reads the environment.

Every other module receives a `Settings` (or the values it needs) from its caller.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_API = "http://127.0.0.1:8080"
DEFAULT_PREDICT_MAX_BYTES = 1_500_000  # AI Platform's documented 1.5 MB request limit
# The uids a root server runs user code as (one per job, build and served version).
DEFAULT_RUN_UID_RANGE = (200_000, 265_535)


def home_from_env() -> Path | None:
    """$CAIRN_HOME when the user set it."""
    value = os.environ.get("CAIRN_HOME")
    return Path(value).expanduser() if value else None


def default_home() -> Path:
    return Path(os.environ.get("CAIRN_HOME") or Path.home() / ".cairn").expanduser()


@dataclass(frozen=True)
class Settings:
    """Where Cairn keeps its state and how the server behaves."""

    home: Path = field(default_factory=default_home)
    # SQLAlchemy URL of the metadata store; None means SQLite in the home directory.
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    predict_max_bytes: int = DEFAULT_PREDICT_MAX_BYTES
    # Training jobs running at once; later ones wait in QUEUED with a jobPosition.
    max_running_jobs: int = 4
    # Prediction node processes one version may ask for (manual nodes or autoscaling's floor).
    max_nodes_per_version: int = 8
    # Replica processes one training job may ask for, master included.
    max_replicas: int = 64
    # Server directories requests may name as local paths (deploymentUri, packageUris,
    # jobDir, trainer arguments); none by default, so requests name gs:// storage only.
    local_roots: tuple[Path, ...] = ()
    # Off only with --insecure-no-auth, which is refused on non-loopback addresses.
    authentication: bool = True
    # Names besides the loopback ones this server answers to (the Host header), and web
    # origins allowed to call it; both empty by default (see api/gate.py for why).
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    # How long an access token lives (Google's: one hour).
    access_token_seconds: int = 3600
    # The unprivileged OS user whose group every uid of user code (trainers, pip builds,
    # prediction nodes) is in when the server runs as root; None means `cairn-runner`,
    # created when missing.
    run_as_user: str | None = None
    # The uids (first, last) user code runs as, one per job, environment build and served
    # version, all in the run-as user's group; no user of /etc/passwd may have one.
    run_uid_range: tuple[int, int] = DEFAULT_RUN_UID_RANGE

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from CAIRN_* variables; keyword overrides (from CLI flags) win when not None."""
        values: dict[str, object] = {"home": default_home()}
        if url := os.environ.get("CAIRN_DATABASE_URL"):
            values["database_url"] = url
        if limit := os.environ.get("CAIRN_PREDICT_MAX_BYTES"):
            values["predict_max_bytes"] = int(limit)
        if running := os.environ.get("CAIRN_MAX_RUNNING_JOBS"):
            values["max_running_jobs"] = int(running)
        if nodes := os.environ.get("CAIRN_MAX_NODES_PER_VERSION"):
            values["max_nodes_per_version"] = int(nodes)
        if lifetime := os.environ.get("CAIRN_ACCESS_TOKEN_SECONDS"):
            values["access_token_seconds"] = int(lifetime)
        if replicas := os.environ.get("CAIRN_MAX_REPLICAS"):
            values["max_replicas"] = int(replicas)
        if roots := os.environ.get("CAIRN_LOCAL_ROOTS"):
            values["local_roots"] = tuple(
                Path(root).expanduser().resolve() for root in roots.split(os.pathsep) if root
            )
        if run_as_user := os.environ.get("CAIRN_RUN_AS_USER"):
            values["run_as_user"] = run_as_user
        if uid_range := os.environ.get("CAIRN_RUN_UID_RANGE"):
            values["run_uid_range"] = parse_uid_range(uid_range)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "home" in values:
            values["home"] = Path(str(values["home"])).expanduser().resolve()
        return cls(**values)  # type: ignore[arg-type]

    @property
    def storage_root(self) -> Path:
        """Local buckets: gs://BUCKET/PATH lives at <home>/storage/BUCKET/PATH."""
        return self.home / "storage"

    @property
    def jobs_root(self) -> Path:
        """Per-job working directories and replica logs."""
        return self.home / "jobs"

    @property
    def envs_root(self) -> Path:
        """Cached Python environments, keyed by the hash of the packages they hold."""
        return self.home / "envs"

    @property
    def identities_root(self) -> Path:
        """Which uid each job, build and served version runs as (a root server's)."""
        return self.home / "identities"

    @property
    def models_root(self) -> Path:
        """Platform copies of deployed versions' artefacts."""
        return self.home / "models"

    @property
    def owner_credential(self) -> Path:
        """The owner's credential, written on first start (0600); the local CLI uses it."""
        return owner_credential_path(self.home)

    @property
    def token_uri(self) -> str:
        """Where credential files Cairn writes send their refresh-token grants."""
        return f"{self.api_url}/token"

    @property
    def api_url(self) -> str:
        """The server's own URL as a process on this machine reaches it (replicas: CAIRN_API)."""
        # A wildcard address is one to listen on, not to connect to: use loopback instead.
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'cairn.db'}"


def parse_uid_range(text: str) -> tuple[int, int]:
    """`FIRST-LAST` (e.g. 200000-265535) as (first, last); ValueError saying what is wrong."""
    first, separator, last = text.strip().partition("-")
    try:
        if not separator:
            raise ValueError
        bounds = int(first), int(last)
    except ValueError:
        raise ValueError(
            f"CAIRN_RUN_UID_RANGE={text!r} is not a range of uids: write FIRST-LAST, "
            "e.g. 200000-265535."
        ) from None
    if not 1000 <= bounds[0] <= bounds[1] < 2**32 - 1:
        raise ValueError(
            f"CAIRN_RUN_UID_RANGE={text!r}: the first uid must be at least 1000 and no "
            f"greater than the last, the last below {2**32 - 1}."
        )
    return bounds


def owner_credential_path(home: Path) -> Path:
    return home / "credentials" / "owner.json"


def access_token_from_env() -> str | None:
    """An access token the user hands the CLI directly (CAIRN_ACCESS_TOKEN)."""
    return os.environ.get("CAIRN_ACCESS_TOKEN") or None


def config_dir() -> Path:
    """Where `cairn auth login` keeps signed-in accounts: $CAIRN_CONFIG, else ~/.config/cairn."""
    value = os.environ.get("CAIRN_CONFIG")
    return Path(value).expanduser() if value else Path.home() / ".config" / "cairn"


def api_url() -> str:
    """The server URL the CLI and client talk to."""
    return os.environ.get("CAIRN_API", DEFAULT_API)
