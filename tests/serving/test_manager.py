"""ServingManager with real node processes: predictions, errors, crashes, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import psutil
import pytest

from cairn.domain.errors import ApiError, Code
from cairn.serving import ServingManager, predict_local
from cairn.serving.manager import NodeRange, ScalingPolicy
from cairn.serving.process import Standby

from .conftest import sklearn_model

KEY = "projects/p/models/m/versions/v1"
ROWS = [[0.5, -1.0, 2.0, 0.1], [-2.0, 0.3, 0.0, 1.5]]


def body(instances: object, **extra: object) -> bytes:
    return orjson.dumps({"instances": instances, **extra})


def predict(manager: ServingManager, payload: bytes, key: str = KEY) -> tuple[int, dict]:
    status, answer = asyncio.run(manager.predict(key, payload))
    return status, orjson.loads(answer)


def assert_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(pid) and _alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"node processes {pids} are still running"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sklearn_predictions_equal_in_process(manager: ServingManager, sklearn_dir: Path) -> None:
    result = manager.deploy(KEY, sklearn_dir, None)
    assert result.framework == "SCIKIT_LEARN"
    assert manager.is_deployed(KEY)
    status, answer = predict(manager, body(ROWS))
    assert status == 200
    assert answer == {"predictions": sklearn_model(sklearn_dir).predict(np.array(ROWS)).tolist()}


def test_xgboost_versions(
    manager: ServingManager, booster_dir: Path, xgb_classifier_dir: Path
) -> None:
    assert manager.deploy(KEY, booster_dir, "XGBOOST").framework == "XGBOOST"
    assert predict(manager, body(ROWS))[1]["predictions"] == pytest.approx(
        predict_local(booster_dir, "XGBOOST", ROWS)
    )
    other = KEY + "_clf"
    assert manager.deploy(other, xgb_classifier_dir, None).framework == "XGBOOST"
    status, answer = predict(manager, body(ROWS), other)
    assert (status, answer["predictions"]) == (200, predict_local(xgb_classifier_dir, None, ROWS))


BAD_REQUESTS = [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"rows": [[1, 2, 3, 4]]}', "no 'instances'"),
    (b'{"instances": []}', "empty"),
    (b'{"instances": {"a": 1}}', "must be a list"),
    (b'{"instances": [[1, 2, 3]]}', "expects 4 features per instance, but got 3"),
    (b'{"instances": [["a", "b", "c", "d"]]}', "Exception during sklearn prediction"),
]


def test_bad_requests_get_400(manager: ServingManager, sklearn_dir: Path) -> None:
    manager.deploy(KEY, sklearn_dir, "SCIKIT_LEARN")
    for payload, words in BAD_REQUESTS:
        status, answer = predict(manager, payload)
        assert status == 400, payload
        assert set(answer) == {"error"}
        assert answer["error"].startswith("Prediction failed: ")
        assert words in answer["error"], (payload, answer)
    assert predict(manager, body(ROWS))[0] == 200


def test_unknown_key(manager: ServingManager) -> None:
    with pytest.raises(ApiError) as caught:
        asyncio.run(manager.predict("projects/p/models/m/versions/none", body(ROWS)))
    assert caught.value.code is Code.NOT_FOUND


def test_corrupt_model_fails_deploy_and_leaves_nothing(
    manager: ServingManager, tmp_path: Path
) -> None:
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    (tmp_path / "model.joblib").write_bytes(b"\x80\x04garbage that is not a pickle")
    with pytest.raises(ApiError) as caught:
        manager.deploy(KEY, tmp_path, "SCIKIT_LEARN")
    assert caught.value.code is Code.FAILED_PRECONDITION
    assert "Could not load the model" in caught.value.message
    assert not manager.is_deployed(KEY)
    after = {child.pid for child in psutil.Process().children(recursive=True)}
    assert_gone(list(after - before))


def test_multiple_model_files_fail_deploy(manager: ServingManager, sklearn_dir: Path) -> None:
    (sklearn_dir / "model.pkl").write_bytes(b"")
    with pytest.raises(ApiError, match="Multiple model files"):
        manager.deploy(KEY, sklearn_dir, None)


def test_killed_node_is_restarted(manager: ServingManager, sklearn_dir: Path) -> None:
    manager.deploy(KEY, sklearn_dir, None)
    [pid] = manager.node_pids(KEY)

    async def scenario() -> tuple[tuple[int, bytes], tuple[int, bytes]]:
        first = await manager.predict(KEY, body(ROWS))
        assert first[0] == 200
        os.kill(pid, signal.SIGKILL)
        _wait_until_dead(pid)  # blocking on purpose: the loop must not see the hang-up first
        after_crash = await manager.predict(KEY, body(ROWS))
        again = await manager.predict(KEY, body(ROWS))
        return after_crash, again

    after_crash, again = asyncio.run(scenario())
    # The request came after the crash, not during it: it waits for the restart.
    assert after_crash[0] == 200, after_crash
    assert again[0] == 200
    assert manager.node_pids(KEY) != [pid]


def _wait_until_dead(pid: int) -> None:
    """Until the node is reaped: a zombie's other threads may still hold its sockets open."""
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid):
        assert time.monotonic() < deadline, f"node {pid} was not reaped"
        time.sleep(0.001)


@pytest.fixture
def slow_model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    slow_dir = tmp_path / "slow"
    slow_dir.mkdir()
    _write_slow_model(slow_dir)
    # The node unpickles the model, so its class must be importable there.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(slow_dir), os.environ.get("PYTHONPATH")]))
    )
    return slow_dir


def test_request_in_flight_during_crash_gets_503(tmp_path: Path, slow_model_dir: Path) -> None:
    manager = ServingManager(tmp_path / "run")
    try:
        manager.deploy(KEY, slow_model_dir, "SCIKIT_LEARN")
        [pid] = manager.node_pids(KEY)

        async def scenario() -> tuple[int, bytes]:
            pending = asyncio.ensure_future(manager.predict(KEY, body([[1.0, 2.0]])))
            await asyncio.sleep(0.5)
            os.kill(pid, signal.SIGKILL)
            return await pending

        status, answer = asyncio.run(scenario())
        assert status == 503
        assert "Retry" in orjson.loads(answer)["error"]
        after = predict(manager, body([[0.0, 1.0]]))
        assert after == (200, {"predictions": [0]})
    finally:
        manager.shutdown()


def test_stuck_node_times_out_and_is_restarted(tmp_path: Path, slow_model_dir: Path) -> None:
    manager = ServingManager(tmp_path / "run", request_timeout_s=1.0)
    try:
        manager.deploy(KEY, slow_model_dir, "SCIKIT_LEARN")
        [pid] = manager.node_pids(KEY)
        status, answer = predict(manager, body([[1.0, 2.0]]))
        assert status == 504
        assert "did not answer within 1 s" in answer["error"]
        assert predict(manager, body([[0.0, 1.0]])) == (200, {"predictions": [0]})
        assert manager.node_pids(KEY) != [pid]
    finally:
        manager.shutdown()


def _write_slow_model(directory: Path) -> None:
    """A pickled object whose predict sleeps when the first feature is 1 (module on disk)."""
    (directory / "slowmodel.py").write_text(
        textwrap.dedent(
            """
            import time

            class SlowModel:
                n_features_in_ = 2

                def predict(self, x):
                    if x[0][0] == 1:
                        time.sleep(30)
                    return [0] * len(x)
            """
        )
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import pickle, slowmodel; pickle.dump(slowmodel.SlowModel(), open('model.pkl', 'wb'))",
        ],
        cwd=directory,
        check=True,
    )


def test_many_concurrent_predicts(manager: ServingManager, sklearn_dir: Path) -> None:
    manager.deploy(KEY, sklearn_dir, None, nodes=2)
    model = sklearn_model(sklearn_dir)
    rng = np.random.default_rng(3)
    requests = [rng.normal(size=(int(rng.integers(1, 4)), 4)).tolist() for _ in range(300)]
    requests[17] = [[1.0, 2.0]]  # one bad request among good ones keeps its own error

    async def scenario() -> list[tuple[int, bytes]]:
        return await asyncio.gather(*(manager.predict(KEY, body(rows)) for rows in requests))

    answers = asyncio.run(scenario())
    for rows, (status, answer) in zip(requests, answers, strict=True):
        if rows == [[1.0, 2.0]]:
            assert status == 400
            continue
        assert status == 200
        assert orjson.loads(answer)["predictions"] == model.predict(np.array(rows)).tolist()


def test_undeploy_and_shutdown_leave_no_processes(tmp_path: Path, sklearn_dir: Path) -> None:
    manager = ServingManager(tmp_path / "run")
    manager.deploy(KEY, sklearn_dir, None)
    manager.deploy(KEY + "b", sklearn_dir, None, nodes=2)
    first = manager.node_pids(KEY)
    manager.undeploy(KEY)
    assert not manager.is_deployed(KEY)
    assert_gone(first)
    others = manager.node_pids(KEY + "b")
    manager.shutdown()
    assert_gone(others)
    assert manager.deployed_keys() == []


def test_redeploy_replaces_nodes(manager: ServingManager, sklearn_dir: Path) -> None:
    manager.deploy(KEY, sklearn_dir, None)
    old = manager.node_pids(KEY)
    manager.deploy(KEY, sklearn_dir, None)
    assert manager.node_pids(KEY) != old
    assert_gone(old)
    assert predict(manager, body(ROWS))[0] == 200


def test_nodes_exit_when_the_server_process_dies(tmp_path: Path, sklearn_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from cairn.serving import ServingManager
        manager = ServingManager(Path({str(tmp_path / "run")!r}))
        manager.deploy("k", Path({str(sklearn_dir)!r}), None, nodes=2)
        print(*manager.node_pids("k"), flush=True)
        time.sleep(60)
        """
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        pids = [int(pid) for pid in server.stdout.readline().split()]
        assert len(pids) == 2
        server.kill()
        server.wait()
        assert_gone(pids)
    finally:
        if server.poll() is None:
            server.kill()


GATED_MODEL = """
import os, time


class GatedModel:
    \"\"\"Records the pid of each process loading it, and loads slowly while `gate` exists.\"\"\"

    n_features_in_ = 4

    def __init__(self, gate, pids):
        self.gate, self.pids = gate, pids

    def __setstate__(self, state):
        self.__dict__.update(state)
        with open(self.pids, "a") as out:
            out.write(f"{os.getpid()}\\n")
        deadline = time.monotonic() + 120
        while os.path.exists(self.gate) and time.monotonic() < deadline:
            time.sleep(0.05)

    def predict(self, x):
        return [0] * len(x)
"""


@pytest.fixture
def gated_model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model whose loading waits while `<dir>/gate` exists; loaders' pids in `<dir>/pids`."""
    directory = tmp_path / "gated"
    directory.mkdir()
    (directory / "gatedmodel.py").write_text(GATED_MODEL)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")]))
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import pickle, gatedmodel; pickle.dump(gatedmodel.GatedModel("
            f"{str(directory / 'gate')!r}, {str(directory / 'pids')!r}), "
            f"open({str(directory / 'model.pkl')!r}, 'wb'))",
        ],
        cwd=directory,
        check=True,
    )
    return directory


def _loader_pids(directory: Path) -> list[int]:
    path = directory / "pids"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_undeploy_during_a_cold_start_stops_the_node_being_started(
    tmp_path: Path, gated_model_dir: Path
) -> None:
    """The node a request is starting belongs to the version: undeploy ends it before it
    returns (and before the version's uid is freed), not whenever it finishes loading."""
    manager = ServingManager(tmp_path / "run", scaling=ScalingPolicy(idle_seconds=0.5))
    try:
        manager.deploy(KEY, gated_model_dir, "SCIKIT_LEARN", autoscaling=NodeRange(0, 1))
        _wait(lambda: (manager.status(KEY) or {}).get("nodes") == 0, "scale to zero")
        (gated_model_dir / "gate").touch()  # the next load hangs until undeployed
        loaded = len(_loader_pids(gated_model_dir))
        answers: list[tuple[int, bytes]] = []
        request = threading.Thread(
            target=lambda: answers.append(asyncio.run(manager.predict(KEY, body(ROWS))))
        )
        request.start()
        _wait(lambda: len(_loader_pids(gated_model_dir)) > loaded, "the cold start to load")
        starting = _loader_pids(gated_model_dir)[-1]
        assert _alive(starting)
        manager.undeploy(KEY)
        assert not _alive(starting), "the node being started outlived undeploy"
        request.join(timeout=30)
        assert not request.is_alive()
        [(status, answer)] = answers
        assert status == 503 and b"undeployed" in answer
        assert not manager.is_deployed(KEY)
    finally:
        (gated_model_dir / "gate").unlink(missing_ok=True)
        manager.shutdown()


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root server gives versions uids")
def test_a_start_after_undeploy_allocates_no_uid(tmp_path: Path, sklearn_dir: Path) -> None:
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
        manager = ServingManager(settings.home / "serving", identities=identities)
        manager.deploy(KEY, model_dir, "SCIKIT_LEARN", autoscaling=NodeRange(1, 2))
        deployment = manager._deployments[KEY]
        manager.undeploy(KEY)
        assert identities.owners("versions/") == []
        # A background start that began just after undeploy (as _grow's thread may).
        deployment.starting += 1
        error = manager._start_one(deployment, cold=False)
        assert error is not None and "undeployed" in error
        assert identities.owners("versions/") == []
        assert deployment.starting == 0 and not deployment.pending
    finally:
        if manager is not None:
            manager.shutdown()
        os.umask(umask)


def test_a_module_planted_in_the_working_directory_is_not_imported(
    tmp_path: Path, sklearn_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nodes and the standby (which imports frameworks as the server's user) do not search
    the server's working directory for modules."""
    planted = tmp_path / "cwd"
    planted.mkdir()
    marker = tmp_path / "planted-ran"
    (planted / "numpy.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(planted)
    manager = ServingManager(tmp_path / "run", scaling=ScalingPolicy(idle_seconds=0.5))
    try:
        manager.deploy(KEY, sklearn_dir, None, autoscaling=NodeRange(0, 1))
        _wait(lambda: (manager.status(KEY) or {}).get("nodes") == 0, "scale to zero")
        _wait(lambda: bool(manager._standby), "a standby")
        status, answer = predict(manager, body(ROWS))  # the standby becomes the node
        assert status == 200, answer
        assert (manager.status(KEY) or {}).get("coldStarts") == 1
        assert not marker.exists()
    finally:
        manager.shutdown()


def test_a_standby_stopped_twice_closes_its_pipe_once(tmp_path: Path) -> None:
    standby = Standby(tmp_path / "standby.log")
    standby.stop()
    # The freed number goes to the next pipe; a second stop must not close that one.
    read_fd, write_fd = os.pipe()
    try:
        standby.stop()
        os.fstat(read_fd)
        os.fstat(write_fd)
        os.write(write_fd, b"x")
        assert os.read(read_fd, 1) == b"x"
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_node_logs_are_per_version_and_go_with_it(tmp_path: Path, sklearn_dir: Path) -> None:
    # Two keys the old naming ("/" to "_") gave the same log file.
    first, second = "projects/p/models/m_x/versions/v", "projects/p/models/m/x_versions/v"
    manager = ServingManager(tmp_path / "run")
    try:
        manager.deploy(first, sklearn_dir, None)
        manager.deploy(second, sklearn_dir, None)
        logs = manager.node_log_paths(first)
        assert logs and all(path.is_file() for path in logs)
        assert set(logs).isdisjoint(manager.node_log_paths(second))
        manager.undeploy(first)
        assert manager.node_log_paths(first) == []
        assert not any(path.exists() for path in logs)
        assert manager.node_log_paths(second)
    finally:
        manager.shutdown()


def test_a_node_that_cannot_restart_is_replaced(tmp_path: Path, sklearn_dir: Path) -> None:
    manager = ServingManager(tmp_path / "run", scaling=ScalingPolicy(idle_seconds=0.5))
    try:
        manager.deploy(KEY, sklearn_dir, None, nodes=1)
        [pid] = manager.node_pids(KEY)
        model = (sklearn_dir / "model.joblib").read_bytes()
        (sklearn_dir / "model.joblib").write_bytes(b"not a model any more")
        os.kill(pid, signal.SIGKILL)
        [node] = manager._deployments[KEY].nodes
        _wait(lambda: node.failure is not None, "the restarts to give up", timeout=180)
        (sklearn_dir / "model.joblib").write_bytes(model)
        ready = lambda: (manager.status(KEY) or {}).get("readyNodes") == 1  # noqa: E731
        _wait(ready, "a replacement", timeout=120)
        assert node not in manager._deployments[KEY].nodes
        assert predict(manager, body(ROWS))[0] == 200
        assert (manager.status(KEY) or {}).get("nodes") == 1
    finally:
        manager.shutdown()
