"""What a job asks of this machine, and what the machine has left: cores, memory and GPUs.

AI Platform sizes its machines in vCPUs, GB and GPUs (`n1-standard-8`: 8 vCPUs, 30 GB).
`MachineCapacity` is this machine (detected, or set by the operator) together with the
policy that scales those sizes down to it, so that a job written for `n1-standard-8`
still runs on a laptop. `training_demand` turns a training input into what its replicas
ask for, refusing at create what could never run here (TPUs; GPUs on a machine without
enough); `Placement` is the ledger of what running jobs hold, and hands each run of a job
its own GPUs; `PlacingRunner` carries those GPUs to the replicas (`CUDA_VISIBLE_DEVICES`).
docs/scheduling.md is the user's side of all this, with the table of machine types.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.domain.errors import failed_precondition, invalid_field, shown
from cairn.domain.jobs import TIER_REPLICAS, ReplicaConfig, TrainingInput
from cairn.training.cluster import EVALUATOR, MASTER, PS, WORKER

if TYPE_CHECKING:
    from cairn.config import Settings

log = logging.getLogger(__name__)

# ----- AI Platform's machines ------------------------------------------------------------


@dataclass(frozen=True)
class MachineType:
    """One machine of AI Platform: its vCPUs, memory and built-in GPUs."""

    name: str
    vcpus: int
    memory_gb: float
    gpus: int = 0
    gpu_type: str | None = None
    # The Compute Engine type Google lists as the equivalent of a legacy name.
    equivalent: str | None = None


def _compute_engine_types() -> dict[str, MachineType]:
    """Compute Engine's N1, E2 and A2 types AI Platform Training ran on (Google's sizes)."""
    types: dict[str, MachineType] = {}
    families = (
        ("n1-standard", (1, 2, 4, 8, 16, 32, 64, 96), 3.75),
        ("n1-highmem", (2, 4, 8, 16, 32, 64, 96), 6.5),
        ("n1-highcpu", (2, 4, 8, 16, 32, 64, 96), 0.9),
        ("e2-standard", (2, 4, 8, 16, 32), 4.0),
        ("e2-highmem", (2, 4, 8, 16), 8.0),
        ("e2-highcpu", (2, 4, 8, 16, 32), 1.0),
    )
    for family, sizes, gb_per_vcpu in families:
        for vcpus in sizes:
            name = f"{family}-{vcpus}"
            types[name] = MachineType(name, vcpus, round(vcpus * gb_per_vcpu, 2))
    for gpus in (1, 2, 4, 8):  # 12 vCPUs and 85 GB per A100 (40 GB)
        name = f"a2-highgpu-{gpus}g"
        types[name] = MachineType(name, 12 * gpus, 85.0 * gpus, gpus, "NVIDIA_TESLA_A100")
    types["a2-megagpu-16g"] = MachineType("a2-megagpu-16g", 96, 1360.0, 16, "NVIDIA_TESLA_A100")
    return types


def _legacy_types(compute: Mapping[str, MachineType]) -> dict[str, MachineType]:
    """AI Platform's own names, sized as the Compute Engine types Google maps them to."""
    table = (
        ("standard", "n1-standard-4", 0, None),
        ("large_model", "n1-highmem-8", 0, None),
        ("complex_model_s", "n1-highcpu-8", 0, None),
        ("complex_model_m", "n1-highcpu-16", 0, None),
        ("complex_model_l", "n1-highcpu-32", 0, None),
        ("standard_gpu", "n1-standard-8", 1, "NVIDIA_TESLA_K80"),
        ("complex_model_m_gpu", "n1-standard-16", 4, "NVIDIA_TESLA_K80"),
        ("complex_model_l_gpu", "n1-standard-32", 8, "NVIDIA_TESLA_K80"),
        ("standard_p100", "n1-standard-8", 1, "NVIDIA_TESLA_P100"),
        ("complex_model_m_p100", "n1-standard-16", 4, "NVIDIA_TESLA_P100"),
        ("standard_v100", "n1-standard-8", 1, "NVIDIA_TESLA_V100"),
        ("large_model_v100", "n1-highmem-8", 1, "NVIDIA_TESLA_V100"),
        ("complex_model_m_v100", "n1-standard-16", 4, "NVIDIA_TESLA_V100"),
        ("complex_model_l_v100", "n1-standard-32", 8, "NVIDIA_TESLA_V100"),
    )
    return {
        name: MachineType(name, compute[base].vcpus, compute[base].memory_gb, gpus, kind, base)
        for name, base, gpus, kind in table
    }


_COMPUTE_ENGINE = _compute_engine_types()
MACHINE_TYPES: dict[str, MachineType] = {**_legacy_types(_COMPUTE_ENGINE), **_COMPUTE_ENGINE}
# Machines that come with a Cloud TPU: nothing here can run them.
TPU_MACHINE_TYPES = frozenset({"cloud_tpu"})


@dataclass(frozen=True)
class TierMachines:
    """The machines behind a predefined scale tier (replica counts: domain.TIER_REPLICAS)."""

    master: str
    worker: str | None = None
    parameter_server: str | None = None
    master_gpus: int = 0


SCALE_TIERS: dict[str, TierMachines] = {
    "BASIC": TierMachines("n1-standard-4"),
    "BASIC_GPU": TierMachines("n1-standard-8", master_gpus=1),  # one NVIDIA K80
    "STANDARD_1": TierMachines("n1-highcpu-8", "n1-highcpu-8", "n1-standard-4"),
    "PREMIUM_1": TierMachines("n1-highcpu-16", "n1-highcpu-16", "n1-highmem-8"),
}

# The scaling policy's reference: this much of AI Platform's sizes becomes the whole of
# this machine (an n1-standard-16); never more, so big machines see Google's own sizes.
REFERENCE_VCPUS = 16.0
REFERENCE_MEMORY_GB = 60.0
# Batch prediction workers: Cairn's own processes, each busy on one core.
BATCH_WORKER_CPUS = 1.0
_EPSILON = 1e-9

# ----- this machine ----------------------------------------------------------------------


@dataclass(frozen=True)
class Gpu:
    index: int  # as nvidia-smi numbers it (PCI bus order)
    name: str = ""
    memory_mb: int = 0


@dataclass(frozen=True)
class MachineCapacity:
    """What this machine offers jobs, and how AI Platform's sizes map onto it.

    `scale`: the factor applied to AI Platform's vCPUs and memory; None ("auto") scales a
    16-vCPU, 60 GB machine to this one and leaves machines at least that big at 1.
    `cpu_fallback`: GPU replicas run on the CPU where the GPUs are missing, instead of the
    job being refused.
    """

    cpus: float
    memory_gb: float
    gpus: tuple[Gpu, ...] = ()
    scale: float | None = None
    cpu_fallback: bool = False

    @property
    def cpu_scale(self) -> float:
        return self.scale if self.scale is not None else min(1.0, self.cpus / REFERENCE_VCPUS)

    @property
    def memory_scale(self) -> float:
        if self.scale is not None:
            return self.scale
        return min(1.0, self.memory_gb / REFERENCE_MEMORY_GB)

    def describe(self) -> str:
        return Resources(self.cpus, self.memory_gb, len(self.gpus)).describe()


def machine_capacity(settings: Settings) -> MachineCapacity:
    """This machine as the settings shape it (docs/scheduling.md, "Settings")."""
    return detect_capacity(
        cpus=settings.capacity_cpus,
        memory_gb=settings.capacity_memory_gb,
        gpu_limit=settings.capacity_gpus,
        scale=settings.machine_scaling,
        cpu_fallback=settings.gpu_cpu_fallback,
    )


def detect_capacity(
    *,
    cpus: float | None = None,
    memory_gb: float | None = None,
    gpu_limit: int | None = None,
    scale: float | None = None,
    cpu_fallback: bool = False,
) -> MachineCapacity:
    """The machine's cores, memory and GPUs, each unless given; `gpu_limit`: use at most
    the first that many of the GPUs found."""
    gpus = tuple(detect_gpus()) if gpu_limit != 0 else ()
    if gpu_limit is not None and gpu_limit < len(gpus):
        gpus = gpus[:gpu_limit]
    elif gpu_limit and gpu_limit > len(gpus):
        log.warning(
            "CAIRN_CAPACITY_GPUS=%d, but only %d GPUs were found; using those", gpu_limit, len(gpus)
        )
    return MachineCapacity(
        cpus=cpus if cpus is not None else detect_cpus(),
        memory_gb=memory_gb if memory_gb is not None else detect_memory_gb(),
        gpus=gpus,
        scale=scale,
        cpu_fallback=cpu_fallback,
    )


def detect_cpus() -> float:
    """Cores this process may use: its CPU affinity, lowered by a cgroup quota."""
    try:
        cores = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = float(os.cpu_count() or 1)
    quota = _read(Path("/sys/fs/cgroup/cpu.max")).split()
    if len(quota) == 2 and quota[0] != "max":
        with contextlib.suppress(ValueError, ZeroDivisionError):
            cores = min(cores, int(quota[0]) / int(quota[1]))
    return max(cores, 0.1)


def detect_memory_gb() -> float:
    """Physical memory, lowered by a cgroup limit."""
    total = 0.0
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) * 1024 / 1e9
    if not total:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
        except (ValueError, OSError):
            total = 1.0
    limit = _read(Path("/sys/fs/cgroup/memory.max")).strip()
    if limit.isdigit():
        total = min(total, int(limit) / 1e9)
    return total


_GPU_LINE = re.compile(r"\s*(\d+)\s*,\s*([^,]*?)\s*(?:,\s*(\d+)(?:\s*MiB)?\s*)?$")


def detect_gpus(command: str = "nvidia-smi") -> list[Gpu]:
    """NVIDIA GPUs as `nvidia-smi` lists them; none when it is missing or fails."""
    program = shutil.which(command)
    if program is None:
        return []
    try:
        listed = subprocess.run(
            [
                program,
                "--query-gpu=index,name,memory.total",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("could not list GPUs with %s: %s", program, error)
        return []
    if listed.returncode != 0:
        log.warning(
            "%s exited with %d; using no GPUs: %s",
            program,
            listed.returncode,
            listed.stderr.strip()[-500:],
        )
        return []
    gpus = []
    for line in listed.stdout.splitlines():
        if match := _GPU_LINE.fullmatch(line):
            index, name, memory = match.groups()
            gpus.append(Gpu(int(index), name, int(memory or 0)))
    return sorted(gpus, key=lambda gpu: gpu.index)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


# ----- what a job asks for ---------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    cpus: float = 0.0
    memory_gb: float = 0.0
    gpus: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpus + other.cpus, self.memory_gb + other.memory_gb, self.gpus + other.gpus
        )

    def times(self, count: int) -> Resources:
        return Resources(self.cpus * count, self.memory_gb * count, self.gpus * count)

    def describe(self) -> str:
        cores = "core" if self.cpus == 1 else "cores"
        text = f"{_number(self.cpus)} {cores}, {_number(self.memory_gb)} GB"
        gpus = "GPU" if self.gpus == 1 else "GPUs"
        return text + f" and {self.gpus} {gpus}"


@dataclass(frozen=True)
class ReplicaDemand:
    task_name: str  # as in logs: master-replica-0
    machine_type: str
    resources: Resources  # scaled to this machine


@dataclass(frozen=True)
class JobDemand:
    """What one job holds while it runs: `runs` copies of its replicas at once (parallel
    tuning trials; 1 otherwise), cores and memory capped at the whole machine."""

    replicas: tuple[ReplicaDemand, ...]
    runs: int = 1
    total: Resources = field(default_factory=Resources)
    on_cpu: bool = False  # asked for GPUs, runs without them (the operator's fallback)

    @property
    def gpus_per_run(self) -> int:
        return 0 if self.on_cpu else sum(r.resources.gpus for r in self.replicas)


def training_demand(
    spec: TrainingInput, capacity: MachineCapacity, parallel_runs: int = 1
) -> JobDemand:
    """What the job's replicas ask of this machine; ApiError for a job that could never run
    here (INVALID_ARGUMENT for an unknown machine type, FAILED_PRECONDITION for TPUs and
    for more GPUs than the machine has, unless the CPU fallback is on)."""
    path = "job.training_input"
    tier = spec.scale_tier or "BASIC"
    if tier == "BASIC_TPU":
        raise failed_precondition(
            "scaleTier BASIC_TPU needs a Cloud TPU, and Cairn has none to offer; use BASIC, "
            "BASIC_GPU or CUSTOM."
        )
    replicas: list[ReplicaDemand] = []
    for role, index, machine, config, where in _replicas(spec, tier, path):
        gpus = _replica_gpus(machine, config, where)
        wanted = Resources(
            min(machine.vcpus * capacity.cpu_scale, capacity.cpus),
            min(machine.memory_gb * capacity.memory_scale, capacity.memory_gb),
            gpus,
        )
        replicas.append(ReplicaDemand(f"{role}-replica-{index}", machine.name, wanted))
    runs = max(1, parallel_runs)
    demand = _capped(JobDemand(tuple(replicas), runs), capacity)
    wanted_gpus = sum(r.resources.gpus for r in replicas) * runs
    if wanted_gpus > len(capacity.gpus):
        if capacity.cpu_fallback:
            return replace(demand, on_cpu=True, total=replace(demand.total, gpus=0))
        raise failed_precondition(_too_many_gpus(replicas, runs, capacity))
    return demand


def batch_demand(workers: int, capacity: MachineCapacity) -> JobDemand:
    """A batch prediction job: each worker process holds one core while it predicts."""
    worker = Resources(BATCH_WORKER_CPUS, 0.0, 0)
    replicas = tuple(
        ReplicaDemand(f"worker-replica-{i}", "batch-worker", worker) for i in range(workers)
    )
    return _capped(JobDemand(replicas), capacity)


def _capped(demand: JobDemand, capacity: MachineCapacity) -> JobDemand:
    """A job bigger than the whole machine asks for the whole machine: it runs alone."""
    total = Resources()
    for replica in demand.replicas:
        total = total + replica.resources
    total = total.times(demand.runs)
    capped = Resources(
        min(total.cpus, capacity.cpus), min(total.memory_gb, capacity.memory_gb), total.gpus
    )
    return replace(demand, total=capped)


def _replicas(
    spec: TrainingInput, tier: str, path: str
) -> Iterator[tuple[str, int, MachineType, ReplicaConfig | None, str]]:
    """(role, index, machine, config, field path of its machine type) for each replica."""
    if tier != "CUSTOM":
        machines = SCALE_TIERS[tier]
        workers, parameter_servers = TIER_REPLICAS[tier]
        master = MACHINE_TYPES[machines.master]
        if machines.master_gpus:
            master = replace(master, gpus=machines.master_gpus, gpu_type="NVIDIA_TESLA_K80")
        yield MASTER, 0, master, spec.master_config, f"{path}.master_config"
        for index in range(workers):
            worker = MACHINE_TYPES[str(machines.worker)]
            yield WORKER, index, worker, spec.worker_config, f"{path}.worker_config"
        for index in range(parameter_servers):
            server = MACHINE_TYPES[str(machines.parameter_server)]
            yield PS, index, server, spec.parameter_server_config, f"{path}.parameter_server_config"
        return
    roles = (
        (MASTER, 1, spec.master_type, spec.master_config, "master"),
        (WORKER, spec.worker_count or 0, spec.worker_type, spec.worker_config, "worker"),
        (
            PS,
            spec.parameter_server_count or 0,
            spec.parameter_server_type,
            spec.parameter_server_config,
            "parameter_server",
        ),
        (
            EVALUATOR,
            spec.evaluator_count or 0,
            spec.evaluator_type,
            spec.evaluator_config,
            "evaluator",
        ),
    )
    for role, count, type_name, config, prefix in roles:
        if not count:
            continue
        machine = machine_type(type_name, f"{path}.{prefix}_type")
        for index in range(int(count)):
            yield role, index, machine, config, f"{path}.{prefix}_config"


def machine_type(name: str | None, field_path: str) -> MachineType:
    """The machine type called `name`; INVALID_ARGUMENT naming the field otherwise."""
    text = (name or "").strip()
    if text in TPU_MACHINE_TYPES:
        raise failed_precondition(
            f"Machine type {text} comes with a Cloud TPU, and Cairn has none to offer; "
            "use a Compute Engine type such as n1-standard-8."
        )
    found = MACHINE_TYPES.get(text) or MACHINE_TYPES.get(text.lower())
    if found is None:
        raise invalid_field(
            field_path,
            f"{shown(text)} is not a machine type of AI Platform Training. Use a Compute "
            "Engine type (n1-standard-N, n1-highmem-N, n1-highcpu-N, e2-standard-N, "
            "e2-highmem-N, e2-highcpu-N, a2-highgpu-Ng) or a legacy name (standard, "
            "large_model, complex_model_s/m/l, standard_gpu, complex_model_m_gpu, ...); "
            "docs/scheduling.md lists them all.",
        )
    return found


def _replica_gpus(machine: MachineType, config: ReplicaConfig | None, where: str) -> int:
    """GPUs per replica: its acceleratorConfig, else those its machine type comes with."""
    accelerator = config.accelerator_config if config is not None else None
    if accelerator is None:
        return machine.gpus
    kind = accelerator.type or "ACCELERATOR_TYPE_UNSPECIFIED"
    if kind.startswith("TPU"):
        raise failed_precondition(
            f"{where}.accelerator_config asks for {kind}, a Cloud TPU, and Cairn has none to "
            "offer; ask for an NVIDIA GPU type or none."
        )
    count = accelerator.count
    if count is not None and count < 0:
        raise invalid_field(f"{where}.accelerator_config.count", "Must not be negative.")
    if kind == "ACCELERATOR_TYPE_UNSPECIFIED":
        return int(count) if count else machine.gpus
    return 1 if count is None else int(count)


def _too_many_gpus(replicas: Sequence[ReplicaDemand], runs: int, capacity: MachineCapacity) -> str:
    asking = [r for r in replicas if r.resources.gpus]
    listed = ", ".join(f"{r.task_name}: {r.resources.gpus}" for r in asking[:4])
    if len(asking) > 4:
        listed += f" and {len(asking) - 4} more replicas"
    total = sum(r.resources.gpus for r in replicas) * runs
    parallel = f" for each of {runs} parallel trials" if runs > 1 else ""
    have = len(capacity.gpus)
    machine = "this machine has no GPUs" if not have else f"this machine has {have}"
    hint = (
        "Lower hyperparameters.maxParallelTrials, or ask for fewer GPUs"
        if runs > 1 and total // runs <= have
        else "Ask for fewer GPUs (acceleratorConfig, or a machine type without GPUs)"
    )
    return (
        f"The job asks for {total} GPU{'s' if total != 1 else ''} ({listed}{parallel}), and "
        f"{machine}, so it could never start. {hint}, or have the operator start Cairn with "
        "CAIRN_GPU_CPU_FALLBACK=1 to run GPU replicas on the CPU (docs/scheduling.md)."
    )


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


# ----- the ledger ------------------------------------------------------------------------

Key = tuple[str, str]


@dataclass
class Allocation:
    demand: JobDemand
    gpus: tuple[int, ...] = ()  # the GPU indices the job holds, all its runs together
    blocks: dict[str, int] = field(default_factory=dict)  # run id -> block number


class Placement:
    """What running jobs hold of the machine; thread-safe.

    A job is admitted whole (every replica of every parallel run at once) or not at all.
    Its GPUs are split into one block per parallel run, and each run (the job, or one
    trial) takes a free block while it runs.
    """

    def __init__(self, capacity: MachineCapacity) -> None:
        self.capacity = capacity
        self._held: dict[Key, Allocation] = {}
        self._lock = threading.Lock()

    def in_use(self) -> Resources:
        with self._lock:
            return self._in_use()

    def _in_use(self) -> Resources:
        used = Resources()
        for allocation in self._held.values():
            used = used + replace(allocation.demand.total, gpus=len(allocation.gpus))
        return used

    def _free_gpus(self) -> list[int]:
        taken = {index for allocation in self._held.values() for index in allocation.gpus}
        return [gpu.index for gpu in self.capacity.gpus if gpu.index not in taken]

    def try_admit(self, key: Key, demand: JobDemand) -> Allocation | None:
        """Hold what the job asks for if it is free now; None when it is not."""
        admitted = self.admit_next([(key, demand)])
        return None if admitted is None else admitted[1]

    def admit_next(self, waiting: Sequence[tuple[Key, JobDemand]]) -> tuple[int, Allocation] | None:
        """Admit the first of `waiting` (in queue order) that can start without delaying
        any job ahead of it; (its index, what it holds), or None.

        A job that does not fit reserves what is free of what it asks for; later jobs
        only get what is left beyond those reservations. So a job waiting for a GPU lets
        CPU-only jobs use the cores it does not need, but no job ever takes what an
        earlier one could use, and the head of the queue never waits longer for them.
        """
        with self._lock:
            used = self._in_use()
            cpus = self.capacity.cpus - used.cpus
            memory = self.capacity.memory_gb - used.memory_gb
            free_gpus = self._free_gpus()
            for index, (key, demand) in enumerate(waiting):
                wanted = demand.total
                if key in self._held:
                    return index, self._held[key]
                if (
                    wanted.cpus <= cpus + _EPSILON
                    and wanted.memory_gb <= memory + _EPSILON
                    and wanted.gpus <= len(free_gpus)
                ):
                    allocation = Allocation(demand, tuple(free_gpus[: wanted.gpus]))
                    self._held[key] = allocation
                    return index, allocation
                cpus -= min(max(cpus, 0.0), wanted.cpus)
                memory -= min(max(memory, 0.0), wanted.memory_gb)
                free_gpus = free_gpus[wanted.gpus :]  # reserved for the job that waits
            return None

    def hold(self, key: Key, demand: JobDemand, gpus: Sequence[int] = ()) -> Allocation:
        """Account for a job that runs already (re-adopted after a restart), even beyond
        the capacity: its processes exist. It keeps the GPUs it was given where free."""
        with self._lock:
            free = self._free_gpus()
            kept = [index for index in gpus if index in free]
            extra = [index for index in free if index not in kept]
            wanted = demand.total.gpus
            chosen = (kept + extra)[:wanted]
            allocation = Allocation(demand, tuple(chosen))
            self._held[key] = allocation
            return allocation

    def release(self, key: Key) -> None:
        with self._lock:
            self._held.pop(key, None)

    def take_devices(self, key: Key, run_id: str) -> dict[str, str] | None:
        """Each replica's CUDA_VISIBLE_DEVICES for one run of the job ("" for a replica
        without GPUs); None when the machine has no GPUs to hide or hand out."""
        with self._lock:
            if not self.capacity.gpus:
                return None
            allocation = self._held.get(key)
            if allocation is None:
                return {"*": ""}
            per_run = allocation.demand.gpus_per_run
            if run_id not in allocation.blocks:
                taken = set(allocation.blocks.values())
                blocks = max(1, allocation.demand.runs)
                allocation.blocks[run_id] = next(
                    (b for b in range(blocks) if b not in taken), len(allocation.blocks)
                )
            block = allocation.blocks[run_id]
            devices = list(allocation.gpus[block * per_run : (block + 1) * per_run])
            assignment: dict[str, str] = {"*": ""}
            for replica in allocation.demand.replicas:
                count = 0 if allocation.demand.on_cpu else replica.resources.gpus
                mine, devices = devices[:count], devices[count:]
                assignment[replica.task_name] = ",".join(str(index) for index in mine)
            return assignment

    def return_devices(self, key: Key, run_id: str) -> None:
        with self._lock:
            allocation = self._held.get(key)
            if allocation is not None:
                allocation.blocks.pop(run_id, None)


# ----- carrying the GPUs to the replicas -------------------------------------------------

# Cairn's own variable: each replica's devices as JSON (task name -> "0,1"; "*" for the
# rest). training/replica_command.py turns it into CUDA_VISIBLE_DEVICES and drops it.
REPLICA_DEVICES_VARIABLE = "CAIRN_REPLICA_DEVICES"


def replica_devices(assignment: str | None, task_name: str) -> dict[str, str]:
    """The CUDA variables for one replica from `CAIRN_REPLICA_DEVICES`; {} without it.

    nvidia-smi numbers GPUs in PCI bus order, CUDA by speed unless told otherwise: the
    order is set so the numbers name the same devices."""
    if not assignment:
        return {}
    try:
        devices = json.loads(assignment)
        visible = str(devices.get(task_name, devices.get("*", "")))
    except (ValueError, AttributeError):
        return {}
    return {"CUDA_VISIBLE_DEVICES": visible, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


class PlacingRunner:
    """The training runner, with each run given its GPUs from the job's allocation.

    Plain jobs and tuning trials both go through it (a trial is one run; the job's parallel
    trials each take a block of its GPUs and give it back when they end). Everything else
    is the runner's own."""

    def __init__(self, runner: Any, placement: Placement) -> None:
        self._runner = runner
        self._placement = placement

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)

    def start(
        self,
        project: str,
        job_id: str,
        training_input: Mapping[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[Any], None],
        trial_id: str | None = None,
        extra_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        key, run_id = (project, job_id), trial_id or ""
        env = self._with_devices(key, run_id, extra_env)
        try:
            self._runner.start(
                project,
                job_id,
                training_input,
                on_state=on_state,
                on_finished=self._returning(key, run_id, on_finished),
                trial_id=trial_id,
                extra_args=extra_args,
                extra_env=env,
            )
        except BaseException:
            self._placement.return_devices(key, run_id)
            raise

    def recover(
        self,
        project: str,
        job_id: str,
        training_input: Mapping[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[Any], None],
        trial_id: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> bool:
        """Re-adopted runs keep the devices they started with; their block is taken again
        here for the accounting (which block a trial had is not recorded)."""
        key, run_id = (project, job_id), trial_id or ""
        env = self._with_devices(key, run_id, extra_env)
        adopted = False
        try:
            adopted = bool(
                self._runner.recover(
                    project,
                    job_id,
                    training_input,
                    on_state=on_state,
                    on_finished=self._returning(key, run_id, on_finished),
                    trial_id=trial_id,
                    extra_env=env,
                )
            )
        finally:
            if not adopted:
                self._placement.return_devices(key, run_id)
        return adopted

    def _with_devices(
        self, key: Key, run_id: str, extra_env: Mapping[str, str] | None
    ) -> dict[str, str]:
        env = dict(extra_env or {})
        devices = self._placement.take_devices(key, run_id)
        if devices is not None:
            env[REPLICA_DEVICES_VARIABLE] = json.dumps(devices, sort_keys=True)
        return env

    def _returning(
        self, key: Key, run_id: str, on_finished: Callable[[Any], None]
    ) -> Callable[[Any], None]:
        def finished(outcome: Any) -> None:
            self._placement.return_devices(key, run_id)
            on_finished(outcome)

        return finished
