"""Answering the frames a node received together, with one model call where possible.

Requests are validated one by one (a bad one gets its own 400), then the rows of all valid
requests to a row-based model are stacked and predicted at once. If that joint call fails,
each request is retried alone so the error lands on the request that caused it.
"""

from __future__ import annotations

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
                if matrix is not None:
                    stacked.append((request_id, matrix))
                    continue
                predictions = self.predictor.predict(request.instances, request.signature_name)
                out.append(encode_frame(request_id, OK, predictions_body(predictions)))
            except PredictionError as error:
                out.append(encode_frame(request_id, BAD_REQUEST, error_body(error.message)))
            except Exception as error:  # noqa: BLE001 - never let one request kill the node
                message = f"Prediction failed: {type(error).__name__}: {error}"
                out.append(encode_frame(request_id, BAD_REQUEST, error_body(message)))
        if stacked:
            out.extend(self._answer_stacked(stacked))
        return b"".join(out)

    def _answer_stacked(self, stacked: list[tuple[int, np.ndarray]]) -> list[bytes]:
        assert self.rows is not None
        if len(stacked) > 1 and len({matrix.shape[1] for _, matrix in stacked}) == 1:
            joint = self._predict_or_none(np.concatenate([matrix for _, matrix in stacked]))
            if joint is not None and len(joint) == sum(len(m) for _, m in stacked):
                return list(_split(stacked, joint))
        return [self._answer_one(request_id, matrix) for request_id, matrix in stacked]

    def _predict_or_none(self, matrix: np.ndarray) -> Any:
        try:
            return self.rows.predict_matrix(matrix)  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - fall back to one call per request
            return None

    def _answer_one(self, request_id: int, matrix: np.ndarray) -> bytes:
        try:
            predictions = self.rows.predict_matrix(matrix)  # type: ignore[union-attr]
            return encode_frame(request_id, OK, predictions_body(predictions))
        except PredictionError as error:
            return encode_frame(request_id, BAD_REQUEST, error_body(error.message))
        except Exception as error:  # noqa: BLE001
            message = f"Prediction failed: {type(error).__name__}: {error}"
            return encode_frame(request_id, BAD_REQUEST, error_body(message))


def _split(stacked: list[tuple[int, np.ndarray]], joint: Any) -> Any:
    start = 0
    for request_id, matrix in stacked:
        end = start + len(matrix)
        yield encode_frame(request_id, OK, predictions_body(joint[start:end]))
        start = end
