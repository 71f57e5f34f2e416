"""The container engine's command lines, its environment file and its probe."""

from __future__ import annotations

import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from cairn.executors.container import (
    ContainerEngine,
    ContainerRun,
    Mount,
    ulimit_options,
    write_env_file,
)


def _run(tmp_path: Path, **changes: object) -> ContainerRun:
    values: dict[str, object] = {
        "name": "cairn-job-master-replica-0-abcd1234",
        "image": "localhost/trainer:1",
        "command": (),
        "args": ("--epochs", "3"),
        "env_file": tmp_path / "master.env",
        "workdir": tmp_path / "work",
        "user": (200001, 998),
        "mounts": (Mount(tmp_path / "work", tmp_path / "work"),),
        "labels": {"io.cairn.job": "job"},
    }
    values.update(changes)
    return ContainerRun(**values)  # type: ignore[arg-type]


def _option(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv) if word == flag]


def test_podman_run_keeps_the_image_entrypoint_and_passes_args_after_it(tmp_path: Path) -> None:
    engine = ContainerEngine(str(tmp_path / "podman"))
    argv = engine.run_argv(_run(tmp_path))
    assert argv[:2] == [str(tmp_path / "podman"), "run"]
    assert argv[-3:] == ["localhost/trainer:1", "--epochs", "3"]
    assert "--entrypoint" not in argv
    assert _option(argv, "--user") == ["200001:998"]
    assert _option(argv, "--network") == ["host"]
    assert _option(argv, "--env-file") == [str(tmp_path / "master.env")]
    assert _option(argv, "--volume") == [f"{tmp_path / 'work'}:{tmp_path / 'work'}"]
    assert _option(argv, "--cap-drop") == ["all"]
    assert _option(argv, "--security-opt") == ["no-new-privileges"]
    assert {"--rm", "--init"} <= set(argv)
    assert _option(argv, "--pull") == ["never"]  # the supervisor pulls, saying so


def test_container_command_replaces_the_entrypoint_in_a_form_docker_also_takes(
    tmp_path: Path,
) -> None:
    engine = ContainerEngine("docker")
    run = _run(
        tmp_path,
        command=("python3", "-m", "trainer.task"),
        mounts=(Mount(Path("/cred.json"), Path("/cred.json"), read_only=True),),
    )
    argv = engine.run_argv(run)
    assert engine.kind == "docker"
    assert _option(argv, "--entrypoint") == ["python3"]
    assert argv[-5:] == ["localhost/trainer:1", "-m", "trainer.task", "--epochs", "3"]
    assert _option(argv, "--volume") == ["/cred.json:/cred.json:ro"]


def test_limits_never_exceed_what_this_process_may_set() -> None:
    options = ulimit_options()
    limits = dict(value.split("=") for value in options[1::2])
    soft, hard = (int(v) for v in limits["nofile"].split(":"))
    assert (soft, hard) == resource.getrlimit(resource.RLIMIT_NOFILE)
    if "nproc" in limits:
        soft, hard = (int(v) for v in limits["nproc"].split(":"))
        assert hard <= resource.getrlimit(resource.RLIMIT_NPROC)[1] or (
            resource.getrlimit(resource.RLIMIT_NPROC)[1] == resource.RLIM_INFINITY
        )


def test_the_env_file_holds_values_verbatim_and_only_the_server_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "containers" / "master.env"
    config = '{"cluster": {"master": ["127.0.0.1:2222"]}, "task": {"type": "master"}}'
    write_env_file(path, {"TF_CONFIG": config, "CLOUD_ML_JOB_ID": "job_1"})
    assert path.read_text() == f"CLOUD_ML_JOB_ID=job_1\nTF_CONFIG={config}\n"
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="line break"):
        write_env_file(path, {"BAD": "one\ntwo"})


def test_a_missing_engine_is_named_in_the_problem(tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "podman")
    problem = ContainerEngine(missing).problem()
    assert problem is not None
    assert missing in problem and "CAIRN_CONTAINER_ENGINE" in problem


def test_an_engine_that_cannot_answer_is_a_problem_too() -> None:
    # `false` fails `version` as a Docker client without its daemon does.
    false = shutil.which("false")
    assert false is not None
    problem = ContainerEngine(false).problem()
    assert problem is not None and "does not work" in problem and "exit status 1" in problem


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_an_installed_podman_is_found_and_answers() -> None:
    engine = ContainerEngine(None)
    assert engine.binary == shutil.which("podman")
    assert engine.kind == "podman"
    version = subprocess.run(["podman", "version"], capture_output=True, check=False)
    assert (engine.problem() is None) == (version.returncode == 0)
