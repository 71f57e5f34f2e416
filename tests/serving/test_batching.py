"""Requests answered together stay independent: one request's failure is never another's."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from cairn.serving.batching import BatchAnswerer
from cairn.serving.channel import NodeChannel
from cairn.serving.framing import HEADER, PREDICT
from cairn.serving.loaders.base import RowPredictor

from .conftest import sklearn_model


class SumModel(RowPredictor):
    """Sums each row; answers a bare scalar (not one value per row) when a row sums to 13."""

    n_features = 2

    def predict_matrix(self, matrix: np.ndarray) -> Any:
        sums = matrix.sum(axis=1)
        return float(sums[0]) if 13.0 in sums else sums

    def predict_objects(self, instances: list[Any]) -> Any:
        return [f"text:{row[0]}" for row in instances]


def decode(frames: bytes) -> dict[int, tuple[int, Any]]:
    answers: dict[int, tuple[int, Any]] = {}
    while frames:
        length, request_id, status = HEADER.unpack(frames[: HEADER.size])
        body = frames[HEADER.size : HEADER.size + length]
        answers[request_id] = (status, orjson.loads(body))
        frames = frames[HEADER.size + length :]
    return answers


def request(instances: Any) -> bytes:
    return orjson.dumps({"instances": instances})


def test_a_bad_answer_in_a_batch_stays_with_its_request() -> None:
    answerer = BatchAnswerer(SumModel())
    frames = [
        (1, PREDICT, request([[1, 2]])),
        (2, PREDICT, request([[6, 7]])),  # the model answers this one with a scalar
        (3, PREDICT, request([[3, 4], [5, 6]])),
        (4, PREDICT, b"{not json"),
    ]
    answers = decode(answerer.answer(frames))
    assert answers[1] == (200, {"predictions": [3.0]})
    assert answers[3] == (200, {"predictions": [7.0, 11.0]})
    assert answers[2][0] == 400 and "problem processing the outputs" in answers[2][1]["error"]
    assert answers[4][0] == 400


def test_number_like_text_is_never_read_as_a_number() -> None:
    answerer = BatchAnswerer(SumModel())
    answers = decode(answerer.answer([(1, PREDICT, request([["12", "x"]]))]))
    assert answers[1] == (200, {"predictions": ["text:12"]})


def test_rows_answered_together_equal_rows_answered_alone() -> None:
    answerer = BatchAnswerer(SumModel())
    bodies = [
        [[1, 2]],
        [[1.5, True], [False, 2]],
        [[0.25, None]],  # null is missing (NaN), as in to_matrix
        [[0, 1]],  # replaced below by an integer beyond int64 (numpy's object path)
        [[1, 2, 3]],  # the wrong width: its own 400
    ]
    frames = [(index, PREDICT, request(rows)) for index, rows in enumerate(bodies)]
    frames[3] = (3, PREDICT, b'{"instances": [[100000000000000000000, 1]]}')
    together = decode(answerer.answer(frames))
    alone = {index: decode(answerer.answer([frame]))[index] for index, frame in enumerate(frames)}
    assert together == alone
    assert together[1] == (200, {"predictions": [2.5, 2.0]})
    assert together[2] == (200, {"predictions": [None]})
    assert together[4][0] == 400 and "expects 2 features" in together[4][1]["error"]


@pytest.mark.slow
def test_a_node_with_model_threads_answers_each_request_its_own(
    tmp_path: Path, sklearn_dir: Path
) -> None:
    """`--threads 2`: batches run on two threads while the loop reads; no answer mixes up."""
    ready_read, ready_write = os.pipe()
    socket_path = tmp_path / "node.sock"
    command = [
        sys.executable, "-m", "cairn.serving.node", "--model-dir", str(sklearn_dir),
        "--socket", str(socket_path), "--ready-fd", str(ready_write), "--threads", "2",
    ]  # fmt: skip
    node = subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=(ready_write,))
    os.close(ready_write)
    try:
        with os.fdopen(ready_read, "rb") as ready:
            assert orjson.loads(ready.readline())["ok"]
        model = sklearn_model(sklearn_dir)
        rng = np.random.default_rng(5)
        requests = [rng.normal(size=(int(rng.integers(1, 30)), 4)).tolist() for _ in range(400)]
        requests[99] = [[1.0, 2.0]]  # a bad request among good ones keeps its own error

        async def scenario() -> list[tuple[int, bytes]]:
            loop = asyncio.get_running_loop()
            _, channel = await loop.create_unix_connection(NodeChannel, str(socket_path))
            futures = [channel.request(PREDICT, request(rows)) for rows in requests]
            answers = await asyncio.wait_for(asyncio.gather(*futures), timeout=120)
            channel.close()
            return answers

        answers = asyncio.run(scenario())
        for index, (rows, (status, answer)) in enumerate(zip(requests, answers, strict=True)):
            if index == 99:
                assert status == 400 and b"expects 4 features" in answer
                continue
            assert status == 200
            assert orjson.loads(answer)["predictions"] == model.predict(np.array(rows)).tolist()
    finally:
        assert node.stdin is not None
        node.stdin.close()  # the node exits when its stdin closes
        node.wait(30)
