"""ServingManager with real node processes: predictions, errors, crashes, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import orjson
import psutil
import pytest

from cairn.domain.errors import ApiError, Code
from cairn.serving import ServingManager, predict_local

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
