"""Package environments: declared dependencies installed, frameworks shared, builds cached."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from tests.training.conftest import RunRecorder
from tests.training.packages import build_sdist, trainer_modules

from cairn.training import EnvironmentCache
from cairn.training.environments import EnvironmentBuildError


@pytest.fixture(scope="module")
def trainer_with_dependency(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trainer declaring `extra_dep` (not in Cairn's venv) and numpy (already there)."""
    return build_sdist(
        tmp_path_factory.mktemp("deps"),
        "trainer",
        trainer_modules(),
        install_requires=["extra_dep", "numpy"],
        version="0.2",
    )


def test_declared_dependencies_are_installed_and_importable(
    make_runner, trainer_with_dependency, extra_dep_links, upload, storage_root, tmp_path
) -> None:
    runner = make_runner(pip_args=["--no-index", "--find-links", str(extra_dep_links)])
    spec = {
        "packageUris": [upload(trainer_with_dependency)],
        "pythonModule": "trainer.task",
        "args": ["--mode=import"],
        "jobDir": "gs://bkt/deps",
    }
    first = RunRecorder()
    runner.start("p1", "job_deps", spec, **first.callbacks)
    outcome = first.wait()
    assert outcome.state == "SUCCEEDED", outcome.error_message
    out = storage_root / "bkt" / "deps" / "extra.txt"
    assert out.read_text() == "extra dependency installed"

    [env_root] = [p for p in (tmp_path / "envs").iterdir() if not p.name.startswith(".")]
    site_packages = next(env_root.glob("lib/python*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site_packages.glob("*.dist-info")}
    assert {"extra_dep", "trainer"} <= installed
    assert "numpy" not in installed  # shared from Cairn's venv, not reinstalled

    # The same packages again: the environment is reused, nothing is installed.
    built_at = os.stat(site_packages).st_mtime_ns
    out.unlink()
    second = RunRecorder()
    runner.start("p1", "job_deps_again", spec, **second.callbacks)
    assert second.wait().state == "SUCCEEDED"
    assert out.exists()
    assert [p for p in (tmp_path / "envs").iterdir() if not p.name.startswith(".")] == [env_root]
    assert os.stat(site_packages).st_mtime_ns == built_at
    service_log = tmp_path / "jobs" / "p1" / "job_deps_again" / "logs" / "service.log"
    assert not service_log.exists() or "Installing" not in service_log.read_text()


def test_a_failed_install_fails_the_job_with_pips_output(make_runner, tmp_path, upload) -> None:
    broken = build_sdist(
        tmp_path / "broken",
        "trainer",
        trainer_modules(),
        install_requires=["no_such_package_cairn_test"],
        version="0.3",
    )
    runner = make_runner(pip_args=["--no-index"])
    recorder = RunRecorder()
    spec = {"packageUris": [upload(broken)], "pythonModule": "trainer.task"}
    runner.start("p1", "job_broken", spec, **recorder.callbacks)
    outcome = recorder.wait()
    assert outcome.state == "FAILED"
    assert outcome.error_message is not None
    assert "pip failed" in outcome.error_message
    assert "no_such_package_cairn_test" in outcome.error_message
    assert recorder.states == ["PREPARING"]
    assert not list((tmp_path / "envs").iterdir())  # no half-built environment left


def test_the_environment_sees_cairns_frameworks(tmp_path, trainer_sdist) -> None:
    cache = EnvironmentCache(tmp_path / "envs")
    env = cache.ensure([trainer_sdist], log_path=tmp_path / "pip.log")
    import subprocess

    probe = subprocess.run(
        [str(env.python), "-c", "import sklearn, xgboost, trainer; print(trainer.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert str(env.root) in probe.stdout
    assert cache.find([trainer_sdist]) == env
    with pytest.raises(EnvironmentBuildError):
        missing = tmp_path / "trainer-9.tar.gz"
        missing.write_bytes(b"not a tarball")
        cache.ensure([missing], log_path=tmp_path / "pip.log")


def test_a_trainer_declaring_plain_tensorflow_reuses_cairns_build(
    make_runner, tmp_path, upload
) -> None:
    """Cairn has tensorflow-cpu; `install_requires=["tensorflow"]` must not download TF."""
    declares_tf = build_sdist(
        tmp_path / "tf",
        "trainer",
        trainer_modules(),
        install_requires=["tensorflow"],
        version="0.4",
    )
    runner = make_runner(pip_args=["--no-index"])  # a download attempt would fail the job
    recorder = RunRecorder()
    spec = {"packageUris": [upload(declares_tf)], "pythonModule": "trainer.task"}
    runner.start("p1", "job_tf_alias", spec, **recorder.callbacks)
    outcome = recorder.wait()
    assert outcome.state == "SUCCEEDED", outcome.error_message


def test_a_rebuilt_sdist_of_unchanged_code_finds_the_same_environment(tmp_path: Path) -> None:
    """The CLI builds a fresh sdist per submission; its timestamps must not miss the cache."""
    from cairn.client.packaging import build_sdist as cli_build_sdist
    from cairn.training.environments import environment_key

    package = tmp_path / "trainer"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text("print('hello')\n")
    first = cli_build_sdist(package, tmp_path / "first")
    for source in package.iterdir():
        os.utime(source, (1_000_000_000, 1_000_000_000))  # as if checked out again later
    second = cli_build_sdist(package, tmp_path / "second")
    assert first[0].read_bytes() != second[0].read_bytes()
    assert environment_key(first) == environment_key(second)

    (package / "task.py").write_text("print('changed')\n")
    changed = cli_build_sdist(package, tmp_path / "changed")
    assert environment_key(changed) != environment_key(first)


# ----- the same package resubmitted from the CLI ------------------------------------------


def test_five_cli_resubmissions_of_one_package_share_one_environment(
    start_server, tmp_path: Path
) -> None:
    """`cairn jobs submit training --package-path` builds a fresh sdist every time."""
    import time

    import yaml
    from tests.client.cli_runner import invoke

    server = start_server()
    package = tmp_path / "src" / "trainer"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text("print('hello from the trainer')\n")
    env = {"CAIRN_HOME": str(server.home)}
    jobs = [f"resubmitted_{i}" for i in range(5)]
    for job in jobs:
        submitted = invoke(
            server.url, "jobs", "submit", "training", job,
            "--package-path", str(package), "--module-name", "trainer.task",
            "--staging-bucket", "gs://staging", env=env,
        )  # fmt: skip
        assert submitted.exit_code == 0, submitted.output
        deadline = time.monotonic() + 120
        while True:
            described = invoke(server.url, "jobs", "describe", job, env=env)
            state = yaml.safe_load(described.stdout)["state"]
            if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            assert time.monotonic() < deadline, f"{job} is still {state}"
            time.sleep(0.2)
        assert state == "SUCCEEDED", described.stdout
        os.utime(package / "task.py")  # as an editor saving it unchanged would
    staged = list((server.home / "storage" / "staging").rglob("trainer-*.tar.gz"))
    assert len(staged) == 5
    environments = [p for p in (server.home / "envs").iterdir() if not p.name.startswith(".")]
    assert len(environments) == 1


# ----- removing environments nobody uses --------------------------------------------------


def _age(parent: Path, name: str, seconds: float) -> None:
    """Make `parent/name` look last used `seconds` ago."""
    then = time.time() - seconds
    mark = parent / ".used" / name
    mark.parent.mkdir(exist_ok=True)
    mark.touch()
    os.utime(mark, (then, then))


def _package(tmp_path: Path, version: str) -> Path:
    return build_sdist(tmp_path / f"pkg-{version}", "trainer", trainer_modules(), version=version)


def test_environments_unused_for_the_retention_are_removed_never_one_in_use(
    tmp_path: Path,
) -> None:
    cache = EnvironmentCache(tmp_path / "envs")
    log = tmp_path / "pip.log"
    stale = cache.ensure([_package(tmp_path, "1.0")], log_path=log)
    running = cache.ensure([_package(tmp_path, "2.0")], log_path=log)
    fresh = cache.ensure([_package(tmp_path, "3.0")], log_path=log)
    for env in (stale, running):
        _age(cache.envs_root, env.root.name, 3 * 86400)
    # A replica of a job still running on `running`, started days ago.
    replica = subprocess.Popen([str(running.python), "-c", "import time; time.sleep(120)"])
    try:
        removed = cache.collect_unused(86400)
        assert removed == [stale.root]
        assert not stale.root.exists()
        assert running.python.exists() and fresh.python.exists()
        assert replica.poll() is None
    finally:
        replica.kill()
        replica.wait()
    # Once it ends, it goes too; an environment asked for again is rebuilt.
    assert cache.collect_unused(86400) == [running.root]
    assert cache.collect_unused(86400) == []
    assert fresh.python.exists()
    again = cache.ensure([_package(tmp_path, "1.0")], log_path=log)
    assert again.python.exists()
    assert not list(cache.envs_root.glob(".removing-*"))


def test_runtime_environments_go_once_no_package_environment_stands_on_them(
    tmp_path: Path,
) -> None:
    """A runtime's layer outlives the package environments on it; the base, every layer.

    The runtime environments here are plain virtual environments under the real names: what
    is tested is the bookkeeping, not TensorFlow (test_runtime_environments.py builds those).
    """
    import venv

    from cairn.training.environments import RUNTIME_MARKER
    from cairn.training.runtimes import BASE_NAME

    runtimes = tmp_path / "runtimes"
    cache = EnvironmentCache(tmp_path / "envs", runtimes_root=runtimes)
    for name in (BASE_NAME, "runtime-2.1-py3.11", "runtime-2.11-py3.11"):
        venv.EnvBuilder(with_pip=False, symlinks=True).create(runtimes / name)
        _age(runtimes, name, 10 * 86400)
    package_env = cache.ensure([_package(tmp_path, "1.0")], log_path=tmp_path / "pip.log")
    (package_env.root / RUNTIME_MARKER).write_text("runtime-2.11-py3.11\n")

    removed = cache.collect_unused(86400)
    assert removed == [runtimes / "runtime-2.1-py3.11"]  # 2.11's still has a package env
    assert (runtimes / BASE_NAME).is_dir()

    _age(cache.envs_root, package_env.root.name, 2 * 86400)
    removed = cache.collect_unused(86400)
    assert removed == [package_env.root, runtimes / "runtime-2.11-py3.11", runtimes / BASE_NAME]
    assert [p.name for p in runtimes.iterdir() if not p.name.startswith(".")] == []


def test_the_collector_runs_at_start_and_periodically(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path / "envs")
    env = cache.ensure([_package(tmp_path, "1.0")], log_path=tmp_path / "pip.log")
    _age(cache.envs_root, env.root.name, 7200)
    cache.start_collector(3600, interval_s=0.2)
    try:
        deadline = time.monotonic() + 60
        while env.root.exists():  # the first pass, at start
            assert time.monotonic() < deadline, "the collector never removed it"
            time.sleep(0.05)
        later = cache.ensure([_package(tmp_path, "2.0")], log_path=tmp_path / "pip.log")
        _age(cache.envs_root, later.root.name, 7200)
        while later.root.exists():  # a later pass
            assert time.monotonic() < deadline, "the collector ran only once"
            time.sleep(0.05)
    finally:
        cache.stop_collector()


def test_a_deployed_versions_environment_is_never_collected(tmp_path: Path) -> None:
    """A version scaled to zero starts nodes with its environment's Python at any time."""
    cache = EnvironmentCache(tmp_path / "envs")
    deployed = cache.ensure([_package(tmp_path, "1.0")], log_path=tmp_path / "pip.log")
    _age(cache.envs_root, deployed.root.name, 90 * 86400)
    pythons = [deployed.python]
    cache.protect(lambda: pythons)
    assert cache.collect_unused(86400) == []
    pythons.clear()  # the version was deleted
    assert cache.collect_unused(86400) == [deployed.root]
