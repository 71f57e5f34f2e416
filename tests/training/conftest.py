"""Fixtures of the training tests: real packages, local buckets, a runner, a run recorder."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.training.packages import EXTRA_DEP, build_sdist, local_buckets, trainer_modules

from cairn.training import RunOutcome, TrainingRunner


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    root = tmp_path / "storage"
    root.mkdir()
    return root


@pytest.fixture
def storage(storage_root: Path) -> Any:
    return local_buckets(storage_root)


@pytest.fixture(scope="session")
def trainer_sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sdist(tmp_path_factory.mktemp("trainer"), "trainer", trainer_modules())


@pytest.fixture(scope="session")
def extra_dep_links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A find-links folder holding the sdist of `extra_dep`, a package Cairn's venv lacks."""
    where = tmp_path_factory.mktemp("extra_dep")
    build_sdist(where, "extra_dep", {"extra_dep.py": EXTRA_DEP})
    return where / "dist"


@pytest.fixture
def upload(storage_root: Path):
    """Copy a local file into a bucket and return its gs:// URI."""

    def put(path: Path, uri_dir: str = "gs://bkt/packages") -> str:
        uri = f"{uri_dir}/{path.name}"
        target = storage_root / uri[len("gs://") :]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        return uri

    return put


@dataclass
class RunRecorder:
    """The callbacks of one run: states in order, the outcome once it arrives."""

    states: list[str] = field(default_factory=list)
    outcomes: list[RunOutcome] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def on_state(self, state: str) -> None:
        self.states.append(state)

    def on_finished(self, outcome: RunOutcome) -> None:
        self.outcomes.append(outcome)
        self.done.set()

    def wait(self, timeout: float = 120.0) -> RunOutcome:
        assert self.done.wait(timeout), f"the run did not finish; states so far: {self.states}"
        assert len(self.outcomes) == 1
        return self.outcomes[0]

    @property
    def callbacks(self) -> dict[str, Any]:
        return {"on_state": self.on_state, "on_finished": self.on_finished}


@pytest.fixture
def make_runner(tmp_path: Path, storage: Any) -> Iterator[Any]:
    runners: list[TrainingRunner] = []

    def make(**options: Any) -> TrainingRunner:
        options.setdefault("grace_s", 2.0)
        runner = TrainingRunner(tmp_path / "jobs", tmp_path / "envs", storage, **options)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.shutdown()


def wait_for_file(path: Path, timeout: float = 60.0) -> Path:
    import time

    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path
