"""Settings: the one place that reads the environment.

Every other module receives a `Settings` (or the values it needs) from its caller.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

DEFAULT_API = "http://127.0.0.1:8080"
DEFAULT_PREDICT_MAX_BYTES = 1_500_000  # AI Platform's documented 1.5 MB request limit
# The uids a root server runs user code as (one per job, build and served version).
DEFAULT_RUN_UID_RANGE = (200_000, 265_535)

_Number = TypeVar("_Number", int, float)


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
    # Jobs running at once, on top of what the machine's capacity admits (below); None: no
    # cap but the capacity. Later jobs wait in QUEUED with a jobPosition.
    max_running_jobs: int | None = None
    # What the job queue places replicas against (docs/scheduling.md): cores, GB of memory
    # and how many of the GPUs nvidia-smi lists; None: the machine's own.
    capacity_cpus: float | None = None
    capacity_memory_gb: float | None = None
    capacity_gpus: int | None = None
    # The factor applied to AI Platform's machine sizes (vCPUs, memory); None ("auto"):
    # a 16-vCPU, 60 GB machine becomes this machine, and bigger machines keep Google's sizes.
    machine_scaling: float | None = None
    # Run GPU replicas on the CPU when this machine lacks the GPUs, instead of refusing.
    gpu_cpu_fallback: bool = False
    # The least scheduling.maxWaitTime a job may set (AI Platform's: 1800 s).
    min_max_wait_seconds: float = 1800.0
    # Prediction node processes one version may ask for (manual nodes or autoscaling's floor).
    max_nodes_per_version: int = 8
    # Replica processes one training job may ask for, master included.
    max_replicas: int = 64
    # Restarts of one crashed worker or evaluator before its crash fails the job (AI
    # Platform's bound is 5; 0 turns restarts off). See docs/training.md, "Worker restarts".
    max_replica_restarts: int = 5
    # Where replicas run (executors.EXECUTORS): only this machine's processes for now.
    executor: str = "local"
    # What runs custom containers (imageUri): podman, docker or a path to either; None:
    # whichever is installed, Podman first (docs/containers.md).
    container_engine: str | None = None
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
    # Serving (docs/serving.md, "Scaling"): requests in flight per node before traffic
    # spreads to the next node and an autoscaled version grows; seconds without a request
    # after which a node above the version's floor stops; requests one node holds at most
    # before the answer is 429 RESOURCE_EXHAUSTED.
    autoscale_target_in_flight: int = 8
    autoscale_idle_seconds: float = 120.0
    serving_max_in_flight_per_node: int = 512
    # Online-prediction logs (request/response samples and access logs): records and body
    # bytes waiting for the writer thread (more are dropped and counted, never waited
    # for), and the bound on what is kept: rows older than the retention go, and each
    # request-log table and each model's access log keeps at most its newest max_rows rows.
    prediction_log_queue_size: int = 10_000
    prediction_log_queue_bytes: int = 256 * 2**20
    prediction_log_max_rows: int = 1_000_000
    # ... and each of the two tables at most this many over all projects and models.
    prediction_log_max_total_rows: int = 2_000_000
    prediction_log_retention_days: float = 30.0
    # Package and runtime environments no job has used for this many days are removed
    # (0: never), at start-up and then periodically (training/environments.py).
    environment_retention_days: float = 30.0
    # Where AI Platform runtime versions' environments live (None: <home>/runtimes).
    runtimes_dir: Path | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from CAIRN_* variables; keyword overrides (from CLI flags) win when not None."""
        values: dict[str, object] = {"home": default_home()}
        if url := os.environ.get("CAIRN_DATABASE_URL"):
            values["database_url"] = url
        if limit := os.environ.get("CAIRN_PREDICT_MAX_BYTES"):
            values["predict_max_bytes"] = int(limit)
        if running := os.environ.get("CAIRN_MAX_RUNNING_JOBS"):
            values["max_running_jobs"] = _scaling_number("CAIRN_MAX_RUNNING_JOBS", running, int, 1)
        values.update(_capacity_from_env())
        if nodes := os.environ.get("CAIRN_MAX_NODES_PER_VERSION"):
            values["max_nodes_per_version"] = int(nodes)
        if lifetime := os.environ.get("CAIRN_ACCESS_TOKEN_SECONDS"):
            values["access_token_seconds"] = int(lifetime)
        if replicas := os.environ.get("CAIRN_MAX_REPLICAS"):
            values["max_replicas"] = int(replicas)
        if restarts := os.environ.get("CAIRN_MAX_REPLICA_RESTARTS"):
            values["max_replica_restarts"] = _scaling_number(
                "CAIRN_MAX_REPLICA_RESTARTS", restarts, int, 0
            )
        if executor := os.environ.get("CAIRN_EXECUTOR"):
            values["executor"] = _executor(executor)
        if engine := os.environ.get("CAIRN_CONTAINER_ENGINE"):
            values["container_engine"] = engine
        if roots := os.environ.get("CAIRN_LOCAL_ROOTS"):
            values["local_roots"] = tuple(
                Path(root).expanduser().resolve() for root in roots.split(os.pathsep) if root
            )
        if run_as_user := os.environ.get("CAIRN_RUN_AS_USER"):
            values["run_as_user"] = run_as_user
        if uid_range := os.environ.get("CAIRN_RUN_UID_RANGE"):
            values["run_uid_range"] = parse_uid_range(uid_range)
        # Checked here, the one place (serving's ScalingPolicy takes them as given).
        if target := os.environ.get("CAIRN_AUTOSCALE_TARGET_INFLIGHT"):
            values["autoscale_target_in_flight"] = _scaling_number(
                "CAIRN_AUTOSCALE_TARGET_INFLIGHT", target, int, 1
            )
        if idle := os.environ.get("CAIRN_AUTOSCALE_IDLE_SECONDS"):
            values["autoscale_idle_seconds"] = _scaling_number(
                "CAIRN_AUTOSCALE_IDLE_SECONDS", idle, float, 0.0, inclusive=False
            )
        if bound := os.environ.get("CAIRN_SERVING_MAX_INFLIGHT_PER_NODE"):
            values["serving_max_in_flight_per_node"] = _scaling_number(
                "CAIRN_SERVING_MAX_INFLIGHT_PER_NODE", bound, int, 1
            )
        if queue_size := os.environ.get("CAIRN_PREDICTION_LOG_QUEUE_SIZE"):
            values["prediction_log_queue_size"] = int(queue_size)
        if queue_bytes := os.environ.get("CAIRN_PREDICTION_LOG_QUEUE_BYTES"):
            values["prediction_log_queue_bytes"] = int(queue_bytes)
        if max_rows := os.environ.get("CAIRN_PREDICTION_LOG_MAX_ROWS"):
            values["prediction_log_max_rows"] = int(max_rows)
        if max_total := os.environ.get("CAIRN_PREDICTION_LOG_MAX_TOTAL_ROWS"):
            values["prediction_log_max_total_rows"] = int(max_total)
        if retention := os.environ.get("CAIRN_PREDICTION_LOG_RETENTION_DAYS"):
            values["prediction_log_retention_days"] = float(retention)
        if env_days := os.environ.get("CAIRN_ENVIRONMENT_RETENTION_DAYS"):
            values["environment_retention_days"] = float(env_days)
        if runtimes_dir := os.environ.get("CAIRN_RUNTIMES_DIR"):
            values["runtimes_dir"] = Path(runtimes_dir).expanduser()
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
    def runtimes_root(self) -> Path:
        """AI Platform runtime versions' environments (docs/runtimes.md), built on first use."""
        return self.runtimes_dir or self.home / "runtimes"

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


def _scaling_number(
    name: str,
    text: str,
    parse: Callable[[str], _Number],
    smallest: _Number,
    *,
    inclusive: bool = True,
) -> _Number:
    """`text` parsed, or a ValueError naming the variable and what it must be."""
    bound = f"at least {smallest}" if inclusive else f"more than {smallest}"
    try:
        value = parse(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number; it must be {bound}.") from None
    if value < smallest or (value == smallest and not inclusive):
        raise ValueError(f"{name}={text!r} must be {bound}.")
    return value


def _capacity_from_env() -> dict[str, object]:
    """The capacity settings (docs/scheduling.md, "Settings"), each checked here."""
    values: dict[str, object] = {}
    if cpus := os.environ.get("CAIRN_CAPACITY_CPUS"):
        values["capacity_cpus"] = _positive("CAIRN_CAPACITY_CPUS", cpus)
    if memory := os.environ.get("CAIRN_CAPACITY_MEMORY_GB"):
        values["capacity_memory_gb"] = _positive("CAIRN_CAPACITY_MEMORY_GB", memory)
    if gpus := os.environ.get("CAIRN_CAPACITY_GPUS"):
        values["capacity_gpus"] = _scaling_number("CAIRN_CAPACITY_GPUS", gpus, int, 0)
    if scaling := os.environ.get("CAIRN_MACHINE_SCALING"):
        values["machine_scaling"] = parse_scaling(scaling)
    if fallback := os.environ.get("CAIRN_GPU_CPU_FALLBACK"):
        values["gpu_cpu_fallback"] = _flag("CAIRN_GPU_CPU_FALLBACK", fallback)
    if wait := os.environ.get("CAIRN_MIN_MAX_WAIT_SECONDS"):
        values["min_max_wait_seconds"] = _positive("CAIRN_MIN_MAX_WAIT_SECONDS", wait)
    return values


def _positive(name: str, text: str) -> float:
    value = _scaling_number(name, text, float, 0.0, inclusive=False)
    if not math.isfinite(value):
        raise ValueError(f"{name}={text!r} must be a finite number above 0.")
    return value


def parse_scaling(text: str) -> float | None:
    """CAIRN_MACHINE_SCALING: `auto` (None), `exact` (1) or a factor above 0 and up to 1."""
    value = text.strip().lower()
    if value in ("", "auto"):
        return None
    if value == "exact":
        return 1.0
    try:
        factor = float(value)
    except ValueError:
        factor = -1.0
    if not 0 < factor <= 1:
        raise ValueError(
            f"CAIRN_MACHINE_SCALING={text!r}: write auto, exact, or a factor above 0 and at "
            "most 1 (0.25: a 16-vCPU machine type asks for 4 cores here)."
        )
    return factor


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name}={text!r} is not a yes/no value; write 1 or 0.")


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


def _executor(text: str) -> str:
    kind = text.strip().lower()
    if kind == "ray":
        raise ValueError(
            "CAIRN_EXECUTOR=ray: running replicas on Ray is not built yet; leave "
            "CAIRN_EXECUTOR unset (local processes)."
        )
    if kind != "local":
        raise ValueError(f"CAIRN_EXECUTOR={text!r} is unknown; the executor is local.")
    return kind
