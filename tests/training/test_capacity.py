"""Machine types to resources, the scaling policy, the placement ledger and GPU detection."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cairn.domain.errors import ApiError, Code
from cairn.domain.jobs import TrainingInput
from cairn.training.capacity import (
    MACHINE_TYPES,
    REPLICA_DEVICES_VARIABLE,
    Gpu,
    MachineCapacity,
    Placement,
    batch_demand,
    detect_capacity,
    detect_gpus,
    replica_devices,
    training_demand,
)

LAPTOP = MachineCapacity(cpus=2, memory_gb=8)
SERVER = MachineCapacity(cpus=64, memory_gb=256, gpus=(Gpu(0), Gpu(1)))
BASE = {"packageUris": ["gs://b/t.tar.gz"], "pythonModule": "t.task", "region": "us-central1"}


def spec(**fields: Any) -> TrainingInput:
    return TrainingInput.parse({**BASE, **fields}, "job.training_input")


def refusal(capacity: MachineCapacity, **fields: Any) -> ApiError:
    with pytest.raises(ApiError) as raised:
        training_demand(spec(**fields), capacity)
    return raised.value


def test_machine_types_have_google_sizes() -> None:
    assert (MACHINE_TYPES["n1-standard-8"].vcpus, MACHINE_TYPES["n1-standard-8"].memory_gb) == (
        8,
        30.0,
    )
    assert MACHINE_TYPES["n1-highmem-2"].memory_gb == 13.0
    assert MACHINE_TYPES["n1-highcpu-16"].memory_gb == 14.4
    assert MACHINE_TYPES["e2-highcpu-8"].memory_gb == 8.0
    assert MACHINE_TYPES["a2-highgpu-2g"].gpus == 2
    assert MACHINE_TYPES["a2-highgpu-2g"].vcpus == 24
    legacy = MACHINE_TYPES["complex_model_m_gpu"]
    assert (legacy.vcpus, legacy.gpus, legacy.equivalent) == (16, 4, "n1-standard-16")
    assert MACHINE_TYPES["standard"].vcpus == 4


def test_big_machines_keep_google_sizes() -> None:
    demand = training_demand(spec(scaleTier="CUSTOM", masterType="n1-standard-8"), SERVER)
    assert (demand.total.cpus, demand.total.memory_gb, demand.total.gpus) == (8, 30, 0)


def test_auto_scaling_shrinks_sizes_to_a_small_machine() -> None:
    """A 16-vCPU, 60 GB machine becomes this 2-core, 8 GB laptop: n1-standard-8 is half."""
    demand = training_demand(spec(scaleTier="CUSTOM", masterType="n1-standard-8"), LAPTOP)
    assert demand.total.cpus == pytest.approx(1.0)
    assert demand.total.memory_gb == pytest.approx(4.0)
    basic = training_demand(spec(), LAPTOP)  # BASIC: one n1-standard-4
    assert basic.total.cpus == pytest.approx(0.5)


def test_a_job_bigger_than_the_machine_asks_for_all_of_it() -> None:
    exact = MachineCapacity(cpus=2, memory_gb=8, scale=1.0)
    demand = training_demand(spec(scaleTier="STANDARD_1"), exact)  # 8 replicas
    assert len(demand.replicas) == 8
    assert (demand.total.cpus, demand.total.memory_gb) == (2, 8)
    assert Placement(exact).try_admit(("p", "j"), demand) is not None


def test_tuning_jobs_hold_their_parallel_trials() -> None:
    one = training_demand(spec(), SERVER)
    three = training_demand(spec(), SERVER, parallel_runs=3)
    assert three.total.cpus == 3 * one.total.cpus


def test_gpus_come_from_accelerator_config_or_the_machine_type() -> None:
    custom = {
        "scaleTier": "CUSTOM",
        "masterType": "n1-standard-4",
        "masterConfig": {"acceleratorConfig": {"type": "NVIDIA_TESLA_T4", "count": "1"}},
        "workerType": "n1-standard-4",
        "workerCount": "1",
        "workerConfig": {"acceleratorConfig": {"type": "NVIDIA_TESLA_T4"}},  # count: 1
    }
    assert training_demand(spec(**custom), SERVER).total.gpus == 2
    assert training_demand(spec(scaleTier="BASIC_GPU"), SERVER).total.gpus == 1
    legacy = {"scaleTier": "CUSTOM", "masterType": "standard_gpu"}
    assert training_demand(spec(**legacy), SERVER).total.gpus == 1


def test_jobs_that_could_never_run_here_are_refused() -> None:
    tpu = refusal(SERVER, scaleTier="BASIC_TPU")
    assert tpu.code is Code.FAILED_PRECONDITION and "TPU" in tpu.message
    no_gpus = refusal(LAPTOP, scaleTier="BASIC_GPU")
    assert no_gpus.code is Code.FAILED_PRECONDITION
    assert "this machine has no GPUs" in no_gpus.message
    assert "CAIRN_GPU_CPU_FALLBACK" in no_gpus.message
    too_many = refusal(SERVER, scaleTier="CUSTOM", masterType="complex_model_m_gpu")
    assert "asks for 4 GPUs" in too_many.message and "has 2" in too_many.message
    unknown = refusal(SERVER, scaleTier="CUSTOM", masterType="n1-standard-7")
    assert unknown.code is Code.INVALID_ARGUMENT
    assert unknown.field_violations[0].field == "job.training_input.master_type"
    tpu_accelerator = refusal(
        SERVER,
        scaleTier="CUSTOM",
        masterType="n1-standard-8",
        masterConfig={"acceleratorConfig": {"type": "TPU_V2", "count": "8"}},
    )
    assert tpu_accelerator.code is Code.FAILED_PRECONDITION


def test_parallel_trials_that_need_more_gpus_name_max_parallel_trials() -> None:
    tuning = {
        "scaleTier": "BASIC_GPU",
        "hyperparameters": {"maxTrials": 4, "maxParallelTrials": 3},
    }
    with pytest.raises(ApiError) as raised:
        training_demand(spec(**tuning), SERVER, parallel_runs=3)
    assert "maxParallelTrials" in raised.value.message


def test_the_cpu_fallback_runs_gpu_replicas_without_gpus() -> None:
    fallback = MachineCapacity(cpus=2, memory_gb=8, cpu_fallback=True)
    demand = training_demand(spec(scaleTier="BASIC_GPU"), fallback)
    assert demand.on_cpu and demand.total.gpus == 0 and demand.gpus_per_run == 0


def test_batch_jobs_hold_a_core_per_worker_up_to_the_machine() -> None:
    assert batch_demand(1, LAPTOP).total.cpus == 1
    assert batch_demand(10, LAPTOP).total.cpus == 2


def test_placement_admits_what_fits_and_frees_it() -> None:
    capacity = MachineCapacity(cpus=1, memory_gb=100, scale=1.0)
    placement = Placement(capacity)
    demand = training_demand(spec(), capacity)  # 4 vCPUs, capped at the one core
    assert placement.try_admit(("p", "a"), demand) is not None
    assert placement.try_admit(("p", "b"), demand) is None
    placement.release(("p", "a"))
    assert placement.try_admit(("p", "b"), demand) is not None


def test_each_replica_and_trial_gets_its_own_gpus() -> None:
    capacity = MachineCapacity(cpus=64, memory_gb=256, gpus=tuple(Gpu(i) for i in range(4)))
    placement = Placement(capacity)
    two_replicas = spec(
        scaleTier="CUSTOM",
        masterType="n1-standard-4",
        masterConfig={"acceleratorConfig": {"type": "NVIDIA_TESLA_T4", "count": "1"}},
        workerType="n1-standard-4",
        workerCount="1",
        workerConfig={"acceleratorConfig": {"type": "NVIDIA_TESLA_T4", "count": "1"}},
        evaluatorType="n1-standard-4",
        evaluatorCount="1",
    )
    demand = training_demand(two_replicas, capacity, parallel_runs=2)
    allocation = placement.try_admit(("p", "tune"), demand)
    assert allocation is not None and allocation.gpus == (0, 1, 2, 3)
    first = placement.take_devices(("p", "tune"), "1")
    second = placement.take_devices(("p", "tune"), "2")
    assert first is not None and second is not None
    assert {first["master-replica-0"], first["worker-replica-0"]} == {"0", "1"}
    assert {second["master-replica-0"], second["worker-replica-0"]} == {"2", "3"}
    assert first["evaluator-replica-0"] == ""  # asked for none: sees none
    placement.return_devices(("p", "tune"), "1")
    third = placement.take_devices(("p", "tune"), "3")  # takes the block trial 1 gave back
    assert third == first
    # A job that holds no GPUs sees none of them.
    assert placement.take_devices(("p", "other"), "") == {"*": ""}
    assert Placement(LAPTOP).take_devices(("p", "tune"), "") is None  # nothing to hide


def test_replica_devices_become_cuda_variables() -> None:
    assignment = json.dumps({"*": "", "master-replica-0": "1"})
    assert replica_devices(assignment, "master-replica-0") == {
        "CUDA_VISIBLE_DEVICES": "1",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    }
    assert replica_devices(assignment, "ps-replica-0")["CUDA_VISIBLE_DEVICES"] == ""
    assert replica_devices(None, "master-replica-0") == {}
    assert REPLICA_DEVICES_VARIABLE.startswith("CAIRN_")


FAKE_NVIDIA_SMI = """#!/bin/sh
# Answers the query Cairn makes, as nvidia-smi would on a machine with two GPUs.
case "$*" in
  *--query-gpu=index,name,memory.total*) printf '0, NVIDIA H100 80GB HBM3, 81559\\n1, NVIDIA H100 80GB HBM3, 81559\\n' ;;
  *) exit 9 ;;
esac
"""


def fake_nvidia_smi(directory: Path, script: str = FAKE_NVIDIA_SMI) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / "nvidia-smi"
    program.write_text(script)
    program.chmod(0o755)
    return directory


def test_gpus_are_detected_with_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{fake_nvidia_smi(tmp_path / 'bin')}{os.pathsep}/usr/bin:/bin")
    gpus = detect_gpus()
    assert [gpu.index for gpu in gpus] == [0, 1]
    assert gpus[0].name == "NVIDIA H100 80GB HBM3" and gpus[0].memory_mb == 81559
    assert len(detect_capacity(gpu_limit=1).gpus) == 1
    assert detect_capacity(gpu_limit=0).gpus == ()


def test_a_failing_nvidia_smi_means_no_gpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = fake_nvidia_smi(
        tmp_path / "bin", "#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n"
    )
    monkeypatch.setenv("PATH", f"{broken}{os.pathsep}/usr/bin:/bin")
    assert detect_gpus() == []
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert detect_gpus() == []


def test_the_machine_is_detected() -> None:
    capacity = detect_capacity()
    assert capacity.cpus >= 0.1 and capacity.memory_gb > 0
    assert detect_capacity(cpus=1.5, memory_gb=3).cpus == 1.5


def test_later_jobs_start_only_on_what_the_waiting_ones_cannot_use() -> None:
    capacity = MachineCapacity(cpus=8, memory_gb=64, gpus=(Gpu(0), Gpu(1)), scale=0.25)
    placement = Placement(capacity)
    two_gpus = training_demand(
        spec(scaleTier="CUSTOM", masterType="n1-standard-4", masterConfig=T4,
             workerType="n1-standard-4", workerCount="1", workerConfig=T4),
        capacity,
    )  # fmt: skip
    assert placement.try_admit(("p", "running"), two_gpus) is not None
    one_gpu = training_demand(spec(scaleTier="BASIC_GPU"), capacity)  # 2 cores, 1 GPU
    cpu_only = training_demand(spec(), capacity)  # 1 core
    big = training_demand(spec(scaleTier="CUSTOM", masterType="n1-standard-16"), capacity)
    waiting = [(("p", "gpu"), one_gpu), (("p", "cpu"), cpu_only)]
    admitted = placement.admit_next(waiting)
    assert admitted is not None and admitted[0] == 1  # the GPU job waits; cores are free
    placement.release(("p", "cpu"))
    # 6 cores are free and the GPU job keeps 2: a job asking for 4 starts...
    assert placement.admit_next([(("p", "gpu"), one_gpu), (("p", "big"), big)]) is not None
    # ... but not one that would eat into them.
    assert placement.admit_next([(("p", "gpu"), one_gpu), (("p", "big2"), big)]) is None
    placement.release(("p", "running"))
    admitted = placement.admit_next([(("p", "gpu"), one_gpu)])
    assert admitted is not None and len(admitted[1].gpus) == 1


T4 = {"acceleratorConfig": {"type": "NVIDIA_TESLA_T4", "count": "1"}}


def test_docs_list_every_machine_type_with_its_size() -> None:
    """docs/scheduling.md's tables are the user's copy of MACHINE_TYPES: they must agree."""
    docs = Path(__file__).parents[2] / "docs" / "scheduling.md"
    rows = {}
    for line in docs.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`") and cells[0].strip("`") in MACHINE_TYPES:
            rows[cells[0].strip("`")] = cells[-3:]
    assert set(rows) == set(MACHINE_TYPES)
    for name, (vcpus, memory, gpus) in rows.items():
        machine = MACHINE_TYPES[name]
        assert (int(vcpus), float(memory)) == (machine.vcpus, machine.memory_gb), name
        assert (0 if gpus == "–" else int(gpus.split(" ")[0])) == machine.gpus, name
