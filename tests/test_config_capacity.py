"""Settings of the capacity-aware queue (docs/scheduling.md, "Settings")."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.config import Settings
from cairn.training.capacity import machine_capacity

VARIABLES = (
    "CAIRN_CAPACITY_CPUS",
    "CAIRN_CAPACITY_MEMORY_GB",
    "CAIRN_CAPACITY_GPUS",
    "CAIRN_MACHINE_SCALING",
    "CAIRN_GPU_CPU_FALLBACK",
    "CAIRN_MIN_MAX_WAIT_SECONDS",
    "CAIRN_MAX_RUNNING_JOBS",
)


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_by_default_the_machine_decides(tmp_path: Path) -> None:
    settings = Settings.from_env(home=tmp_path)
    assert (settings.capacity_cpus, settings.capacity_memory_gb, settings.capacity_gpus) == (
        None,
        None,
        None,
    )
    assert settings.machine_scaling is None  # auto
    assert not settings.gpu_cpu_fallback
    assert settings.min_max_wait_seconds == 1800
    assert settings.max_running_jobs is None


def test_the_environment_shapes_the_capacity(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CAIRN_CAPACITY_CPUS", "1.5")
    monkeypatch.setenv("CAIRN_CAPACITY_MEMORY_GB", "6")
    monkeypatch.setenv("CAIRN_CAPACITY_GPUS", "0")
    monkeypatch.setenv("CAIRN_MACHINE_SCALING", "exact")
    monkeypatch.setenv("CAIRN_GPU_CPU_FALLBACK", "yes")
    monkeypatch.setenv("CAIRN_MIN_MAX_WAIT_SECONDS", "2")
    monkeypatch.setenv("CAIRN_MAX_RUNNING_JOBS", "3")
    settings = Settings.from_env(home=tmp_path)
    assert settings.min_max_wait_seconds == 2 and settings.max_running_jobs == 3
    capacity = machine_capacity(settings)
    assert (capacity.cpus, capacity.memory_gb, capacity.gpus) == (1.5, 6, ())
    assert capacity.cpu_scale == 1 and capacity.cpu_fallback
    monkeypatch.setenv("CAIRN_MACHINE_SCALING", "0.25")
    assert Settings.from_env(home=tmp_path).machine_scaling == 0.25


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CAIRN_CAPACITY_CPUS", "0"),
        ("CAIRN_CAPACITY_CPUS", "inf"),
        ("CAIRN_CAPACITY_MEMORY_GB", "lots"),
        ("CAIRN_CAPACITY_GPUS", "-1"),
        ("CAIRN_MACHINE_SCALING", "2"),
        ("CAIRN_MACHINE_SCALING", "half"),
        ("CAIRN_GPU_CPU_FALLBACK", "maybe"),
        ("CAIRN_MIN_MAX_WAIT_SECONDS", "0"),
        ("CAIRN_MAX_RUNNING_JOBS", "0"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings.from_env(home=tmp_path)
