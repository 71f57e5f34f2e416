"""Scaling with real node processes: fill-first routing, growth, idle scale-down to zero,
cold starts, live rescaling and 429 under saturation."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from cairn.domain.errors import ApiError, Code
from cairn.serving import ServingManager
from cairn.serving.manager import NodeRange, ScalingPolicy

from .conftest import sklearn_model

pytestmark = pytest.mark.slow

KEY = "projects/p/models/m/versions/v1"
ROWS = [[0.5, -1.0, 2.0, 0.1]]


def body(instances: object) -> bytes:
    return orjson.dumps({"instances": instances})


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def status(manager: ServingManager) -> dict[str, float]:
    found = manager.status(KEY)
    assert found is not None
    return found


@pytest.fixture
def pid_model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[float], Path]:
    """Model directories whose model sleeps `delay` per call and answers its node's pid;
    loading it waits while `<directory>/gate` exists."""
    source = tmp_path / "pidmodel_src"
    source.mkdir()
    (source / "pidmodel.py").write_text(
        textwrap.dedent(
            """
            import os, time

            class PidModel:
                n_features_in_ = 4

                def __init__(self, delay, gate):
                    self.delay, self.gate = delay, gate

                def __setstate__(self, state):
                    self.__dict__.update(state)
                    deadline = time.monotonic() + 120
                    while os.path.exists(self.gate) and time.monotonic() < deadline:
                        time.sleep(0.05)  # loading waits while the gate file exists

                def predict(self, x):
                    time.sleep(self.delay)
                    return [os.getpid()] * len(x)
            """
        )
    )
    # The node unpickles the model, so its class must be importable there.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")]))
    )

    def make(delay: float) -> Path:
        directory = tmp_path / f"pid-{delay}"
        directory.mkdir()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import pickle, pidmodel; pickle.dump(pidmodel.PidModel("
                f"{delay}, {str(directory / 'gate')!r}), "
                f"open({str(directory / 'model.pkl')!r}, 'wb'))",
            ],
            cwd=source,
            check=True,
        )
        return directory

    return make


@pytest.fixture
def make_manager(tmp_path: Path) -> Iterator[Callable[..., ServingManager]]:
    managers: list[ServingManager] = []

    def make(**policy: float) -> ServingManager:
        manager = ServingManager(
            tmp_path / f"run{len(managers)}",
            scaling=ScalingPolicy(**policy),  # type: ignore[arg-type]
        )
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.shutdown()


async def pids_of(manager: ServingManager, requests: int) -> list[int]:
    answers = await asyncio.gather(*(manager.predict(KEY, body(ROWS)) for _ in range(requests)))
    assert all(code == 200 for code, _ in answers), answers
    return [orjson.loads(answer)["predictions"][0] for _, answer in answers]


def test_scale_to_zero_then_the_first_request_starts_a_node(
    make_manager: Callable[..., ServingManager], sklearn_dir: Path
) -> None:
    manager = make_manager(idle_seconds=0.5)
    manager.deploy(KEY, sklearn_dir, None, autoscaling=NodeRange(0, 2))
    [first] = manager.node_pids(KEY)
    wait_for(lambda: status(manager)["nodes"] == 0, "the idle node to stop")
    wait_for(lambda: not psutil.pid_exists(first) or _zombie(first), "its process to end")
    assert manager.is_deployed(KEY)  # scaled to zero is still deployed

    async def burst() -> list[tuple[int, bytes]]:
        return await asyncio.gather(*(manager.predict(KEY, body(ROWS)) for _ in range(5)))

    began = time.monotonic()
    answers = asyncio.run(burst())
    held = time.monotonic() - began
    expected = sklearn_model(sklearn_dir).predict(ROWS).tolist()
    # Every request was held for the one node, none failed.
    assert answers == [(200, orjson.dumps({"predictions": expected}))] * 5
    now = status(manager)
    # (The node may already have idled out again on a loaded machine: nodes is 0 or 1.)
    assert now["coldStarts"] == 1 and now["nodes"] <= 1
    assert 0 < now["lastColdStartSeconds"] <= held
    assert manager.node_log_paths(KEY) and all(p.is_file() for p in manager.node_log_paths(KEY))


def test_light_traffic_fills_one_node_before_spreading(
    make_manager: Callable[..., ServingManager], pid_model_dir: Callable[[float], Path]
) -> None:
    manager = make_manager(target_in_flight=4)
    manager.deploy(KEY, pid_model_dir(0.3), "SCIKIT_LEARN", nodes=2)
    # Four at once fit the target: one node, batched together.
    assert len(set(asyncio.run(pids_of(manager, 4)))) == 1
    # Eight at once do not: the second node takes the rest.
    assert len(set(asyncio.run(pids_of(manager, 8)))) == 2


def test_load_adds_nodes_and_idleness_removes_them(
    make_manager: Callable[..., ServingManager], pid_model_dir: Callable[[float], Path]
) -> None:
    manager = make_manager(target_in_flight=1, idle_seconds=1.0)
    manager.deploy(KEY, pid_model_dir(0.2), "SCIKIT_LEARN", autoscaling=NodeRange(1, 3))
    [first] = manager.node_pids(KEY)

    async def load() -> set[int]:
        """Six clients in a loop until three nodes serve (or a minute passes)."""
        seen: set[int] = set()
        deadline = time.monotonic() + 90

        async def client() -> None:
            while status(manager)["readyNodes"] < 3 and time.monotonic() < deadline:
                code, answer = await manager.predict(KEY, body(ROWS))
                assert code == 200, answer
                seen.add(orjson.loads(answer)["predictions"][0])

        await asyncio.gather(*(client() for _ in range(6)))
        seen.update(await pids_of(manager, 6))  # three nodes up: the load spreads over them
        return seen

    seen = asyncio.run(load())
    assert status(manager)["readyNodes"] == 3
    assert len(seen) == 3
    assert status(manager)["coldStarts"] == 0  # grown under load, not from zero
    wait_for(lambda: status(manager)["nodes"] == 1, "the idle nodes to stop")
    assert manager.node_pids(KEY) == [first]  # the first node, the one traffic fills, stays
    assert asyncio.run(pids_of(manager, 1)) == [first]


def test_saturation_answers_429_instead_of_queueing(
    make_manager: Callable[..., ServingManager], pid_model_dir: Callable[[float], Path]
) -> None:
    manager = make_manager(max_in_flight_per_node=2)
    manager.deploy(KEY, pid_model_dir(1.0), "SCIKIT_LEARN", autoscaling=NodeRange(1, 1))

    async def burst() -> list[object]:
        calls = (manager.predict(KEY, body(ROWS)) for _ in range(6))
        return await asyncio.gather(*calls, return_exceptions=True)

    answers = asyncio.run(burst())
    served = [a for a in answers if isinstance(a, tuple)]
    refused = [a for a in answers if isinstance(a, ApiError)]
    assert [code for code, _ in served] == [200, 200]  # type: ignore[misc]
    assert len(refused) == 4
    assert all(error.code is Code.RESOURCE_EXHAUSTED for error in refused)
    assert "maxNodes" in refused[0].message
    # Once the node has room again, requests are served.
    assert asyncio.run(pids_of(manager, 2)) == manager.node_pids(KEY) * 2


def test_saturation_of_manual_nodes_suggests_more_nodes(
    make_manager: Callable[..., ServingManager], pid_model_dir: Callable[[float], Path]
) -> None:
    manager = make_manager(max_in_flight_per_node=1)
    manager.deploy(KEY, pid_model_dir(1.0), "SCIKIT_LEARN", nodes=1)

    async def burst() -> list[object]:
        calls = (manager.predict(KEY, body(ROWS)) for _ in range(2))
        return await asyncio.gather(*calls, return_exceptions=True)

    [refused] = [a for a in asyncio.run(burst()) if isinstance(a, ApiError)]
    assert refused.code is Code.RESOURCE_EXHAUSTED
    assert "--nodes" in refused.message and "maxNodes" not in refused.message


def test_requests_for_restarting_nodes_are_bounded_too(
    make_manager: Callable[..., ServingManager], pid_model_dir: Callable[[float], Path]
) -> None:
    """With every node restarting, each still takes at most max_in_flight_per_node held
    requests; the rest get 429 at once instead of waiting for the restart."""
    manager = make_manager(max_in_flight_per_node=2)
    model_dir = pid_model_dir(0.0)
    manager.deploy(KEY, model_dir, "SCIKIT_LEARN", nodes=2)
    pids = manager.node_pids(KEY)
    (model_dir / "gate").touch()  # restarts hang in loading until the gate goes
    try:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: status(manager)["readyNodes"] == 0, "both nodes to be restarting")

        async def burst() -> list[object]:
            calls = [asyncio.ensure_future(manager.predict(KEY, body(ROWS))) for _ in range(10)]
            await asyncio.sleep(0.5)  # all ten routed (or refused) before the gate opens
            (model_dir / "gate").unlink()
            return await asyncio.gather(*calls, return_exceptions=True)

        answers = asyncio.run(burst())
    finally:
        (model_dir / "gate").unlink(missing_ok=True)
    served = [a for a in answers if isinstance(a, tuple)]
    refused = [a for a in answers if isinstance(a, ApiError)]
    assert [code for code, _ in served] == [200] * 4, served  # type: ignore[misc]
    assert len(refused) == 6
    assert all(error.code is Code.RESOURCE_EXHAUSTED for error in refused)


def test_a_node_scaled_down_under_a_request_sends_it_elsewhere(
    make_manager: Callable[..., ServingManager], pid_model_dir: Callable[[float], Path]
) -> None:
    """The autoscaler retires a node (on its own thread) just after routing chose it: the
    request goes to another node instead of failing with 503."""
    manager = make_manager()
    manager.deploy(KEY, pid_model_dir(0.0), "SCIKIT_LEARN", nodes=2)
    deployment = manager._deployments[KEY]
    route = manager._route
    retired: list[int] = []

    def route_then_scale_down(chosen_for: object) -> object:
        node = route(deployment)
        if node is not None and not retired:
            retired.append(node.pid or 0)
            with manager._lock:  # what _shrink_idle does between routing and forwarding
                deployment.nodes = [n for n in deployment.nodes if n is not node]
            manager._retire([node])
        return node

    manager._route = route_then_scale_down  # type: ignore[method-assign, assignment]
    code, answer = asyncio.run(manager.predict(KEY, body(ROWS)))
    assert code == 200, answer
    assert retired and orjson.loads(answer)["predictions"] != retired
    assert status(manager)["nodes"] == 1


def test_manual_nodes_change_live(
    make_manager: Callable[..., ServingManager], sklearn_dir: Path
) -> None:
    manager = make_manager(idle_seconds=0.2)
    manager.deploy(KEY, sklearn_dir, None, nodes=1)
    [first] = manager.node_pids(KEY)
    manager.scale(KEY, nodes=3)
    assert len(manager.node_pids(KEY)) == 3 and manager.node_pids(KEY)[0] == first
    time.sleep(1.0)  # manual nodes never stop for idleness
    assert status(manager)["nodes"] == 3
    manager.scale(KEY, nodes=1)
    assert manager.node_pids(KEY) == [first]
    # To autoscaling with a floor of zero: the idle node goes.
    manager.scale(KEY, autoscaling=NodeRange(0, 2))
    wait_for(lambda: status(manager)["nodes"] == 0, "the idle node to stop")
    assert asyncio.run(manager.predict(KEY, body(ROWS)))[0] == 200
    assert status(manager)["coldStarts"] == 1


def test_a_cold_start_that_fails_answers_503_with_the_reason(
    make_manager: Callable[..., ServingManager], sklearn_dir: Path
) -> None:
    manager = make_manager(idle_seconds=0.2)
    manager.deploy(KEY, sklearn_dir, None, autoscaling=NodeRange(0, 1))
    wait_for(lambda: status(manager)["nodes"] == 0, "the idle node to stop")
    (sklearn_dir / "model.joblib").write_bytes(b"no longer a model")
    code, answer = asyncio.run(manager.predict(KEY, body(ROWS)))
    assert code == 503
    assert "could not be started" in orjson.loads(answer)["error"]
    assert status(manager)["nodes"] == 0  # nothing left starting or half-started


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _standbys() -> list[psutil.Process]:
    """This process's live children started as standby nodes (those nodes included)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "cairn.serving.standby" in child.cmdline():
                found.append(child)
        except psutil.Error:  # ended (or a zombie) meanwhile
            pass
    return found


def test_a_cold_start_turns_the_standby_into_the_node(
    make_manager: Callable[..., ServingManager], sklearn_dir: Path
) -> None:
    manager = make_manager(idle_seconds=0.5)
    assert _standbys() == []  # no version may scale to zero: no standby
    manager.deploy(KEY, sklearn_dir, None, autoscaling=NodeRange(0, 1))
    wait_for(lambda: status(manager)["nodes"] == 0, "the idle node to stop")
    wait_for(lambda: len(_standbys()) == 1, "a standby")
    [standby] = _standbys()
    assert asyncio.run(manager.predict(KEY, body(ROWS)))[0] == 200
    assert manager.node_pids(KEY) == [standby.pid]
    wait_for(lambda: len(_standbys()) == 2, "the next standby")  # the node's cmdline is one
    manager.undeploy(KEY)
    wait_for(lambda: _standbys() == [], "the standby to stop once nothing scales to zero")


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root server switches nodes to other uids")
def test_a_standby_drops_to_the_versions_uid_before_loading(
    tmp_path: Path, sklearn_dir: Path
) -> None:
    from cairn.config import Settings
    from cairn.isolation import isolate_user_code

    umask = os.umask(0o022)
    os.umask(umask)
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    manager = None
    try:
        identities = isolate_user_code(settings).identities
        assert identities is not None
        model_dir = settings.models_root / "p" / "m" / "v"
        model_dir.mkdir(parents=True)
        for source in sklearn_dir.iterdir():
            (model_dir / source.name).write_bytes(source.read_bytes())
        manager = ServingManager(
            settings.home / "serving",
            identities=identities,
            scaling=ScalingPolicy(idle_seconds=0.5),
        )
        manager.deploy(KEY, model_dir, "SCIKIT_LEARN", autoscaling=NodeRange(0, 1))
        [first] = manager.node_pids(KEY)
        uid = psutil.Process(first).uids().effective
        assert uid != 0
        wait_for(lambda: status(manager)["nodes"] == 0, "the idle node to stop")
        wait_for(lambda: len(_standbys()) == 1, "a standby")
        [standby] = _standbys()
        assert standby.uids().effective == 0  # nothing of the user's has run in it yet
        code, answer = asyncio.run(manager.predict(KEY, body(ROWS)))
        assert code == 200, answer
        assert manager.node_pids(KEY) == [standby.pid]
        node = psutil.Process(standby.pid)
        assert set(node.uids()) == {uid}
        assert node.gids().effective == identities.base.gid
        assert set(node.gids()) == {identities.base.gid}
        assert "CAIRN_HOME" not in node.environ()
    finally:
        if manager is not None:
            manager.shutdown()
        os.umask(umask)
