"""Answering the frames a node received together, with one model call where possible.

Requests are validated one by one (a bad one gets its own 400), then the rows of all valid
requests to a row-based model are stacked and predicted at once. If that joint call fails,
each request is retried alone so the error lands on the request that caused it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from cairn.serving.errors import PredictionError
from cairn.serving.framing import PING, Frame, encode_frame
from cairn.serving.loaders.base import Predictor, RowPredictor
from cairn.serving.requests import parse_request
from cairn.serving.responses import error_body, predictions_body

OK = 200
BAD_REQUEST = 400
PONG = b"{}"


class BatchAnswerer:
    """Turns a list of request frames into the bytes of their response frames."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.rows = predictor if isinstance(predictor, RowPredictor) else None

    def answer(self, frames: list[Frame]) -> bytes:
        out: list[bytes] = []
        stacked: list[tuple[int, np.ndarray]] = []
        for request_id, kind, payload in frames:
            if kind == PING:
                out.append(encode_frame(request_id, OK, PONG))
                continue
            try:
                request = parse_request(payload)
                matrix = self.rows.to_matrix(request.instances) if self.rows else None
            except Exception as error:  # noqa: BLE001 - a bad request gets its own 400
                out.append(_error_frame(request_id, error))
                continue
            if matrix is not None:
                stacked.append((request_id, matrix))
                continue
            out.append(
                _answer_frame(
                    request_id,
                    len(request.instances),
                    partial(self.predictor.predict_request, request),
                )
            )
        if stacked:
            out.extend(self._answer_stacked(stacked))
        return b"".join(out)

    def _answer_stacked(self, stacked: list[tuple[int, np.ndarray]]) -> list[bytes]:
        assert self.rows is not None
        rows = self.rows
        if len(stacked) > 1 and len({matrix.shape[1] for _, matrix in stacked}) == 1:
            joint = self._predict_or_none(np.concatenate([matrix for _, matrix in stacked]))
            if joint is not None and _count(joint) == sum(len(m) for _, m in stacked):
                return list(_split(stacked, joint))
        return [
            _answer_frame(request_id, len(matrix), partial(rows.predict_matrix, matrix))
            for request_id, matrix in stacked
        ]

    def _predict_or_none(self, matrix: np.ndarray) -> Any:
        try:
            return self.rows.predict_matrix(matrix)  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - fall back to one call per request
            return None


def _answer_frame(request_id: int, expected: int, predict: Callable[[], Any]) -> bytes:
    """One response frame; whatever fails is this request's own 400, never the node's."""
    try:
        predictions = predict()
        count = _count(predictions)
        if count != expected:
            raise PredictionError(
                "There was a problem processing the outputs: the model returned "
                f"{'no list' if count is None else count} of predictions for {expected} "
                "instances."
            )
        return encode_frame(request_id, OK, predictions_body(predictions))
    except Exception as error:  # noqa: BLE001 - never let one request kill the node
        return _error_frame(request_id, error)


def _error_frame(request_id: int, error: Exception) -> bytes:
    if isinstance(error, PredictionError):
        message = error.message
    else:
        message = f"Prediction failed: {type(error).__name__}: {error}"
    return encode_frame(request_id, BAD_REQUEST, error_body(message))


def _count(predictions: Any) -> int | None:
    try:
        return len(predictions)
    except TypeError:
        return None


def _split(stacked: list[tuple[int, np.ndarray]], joint: Any) -> Any:
    start = 0
    for request_id, matrix in stacked:
        end = start + len(matrix)
        yield _answer_frame(request_id, len(matrix), partial(joint.__getitem__, slice(start, end)))
        start = end
