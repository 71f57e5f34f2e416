"""Requests answered together stay independent: one request's failure is never another's."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from cairn.serving.batching import BatchAnswerer
from cairn.serving.framing import HEADER, PREDICT
from cairn.serving.loaders.base import RowPredictor


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
