"""Package environments: declared dependencies installed, frameworks shared, builds cached."""

from __future__ import annotations

import os
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
