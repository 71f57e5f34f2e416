"""Answering the frames a node received together, with one model call where possible.

Requests are validated one by one (a bad one gets its own 400), then the inputs of all valid
requests that can share a call are stacked and predicted at once: the rows of requests to a
scikit-learn/XGBoost model with the same number of features, and the tensors of requests to
the same TensorFlow signature with the same instance shapes. If a joint call fails, each of
its requests is retried alone so the error lands on the request that caused it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import partial
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cairn.serving.errors import PredictionError
from cairn.serving.framing import PING, Frame, encode_frame
from cairn.serving.loaders.base import Predictor, RowPredictor
from cairn.serving.requests import PredictRequest, parse_request
from cairn.serving.responses import error_body, predictions_body

OK = 200
BAD_REQUEST = 400
PONG = b"{}"


class StackableInputs(Protocol):
    count: int
    stackable: bool

    @property
    def stack_key(self) -> Hashable: ...


@runtime_checkable
class TensorPredictor(Protocol):
    """A predictor whose prepared inputs can be concatenated (the TensorFlow loader's)."""

    def to_inputs(self, request: PredictRequest) -> Any: ...

    def stack_inputs(self, parts: list[Any]) -> Any: ...

    def predict_inputs(self, inputs: Any) -> Any: ...


class _Stacker:
    """How one kind of predictor prepares, stacks and predicts a request's inputs."""

    def prepare(self, request: PredictRequest) -> tuple[Hashable | None, Any, int] | None:
        """(stack key or None to predict alone, inputs, instance count), or None when the
        request takes the predictor's own path (`predict_request`). Raises for bad input."""
        raise NotImplementedError

    def stack(self, parts: list[Any]) -> Any:
        raise NotImplementedError

    def predict(self, inputs: Any) -> Any:
        raise NotImplementedError


class _RowStacker(_Stacker):
    def __init__(self, rows: RowPredictor) -> None:
        self.rows = rows
        # A subclass that converts instances its own way keeps its conversion.
        self.fast = type(rows).to_matrix is RowPredictor.to_matrix

    def prepare(self, request: PredictRequest) -> tuple[Hashable | None, Any, int] | None:
        matrix = self._fast_matrix(request.instances) if self.fast else None
        if matrix is None:
            matrix = self.rows.to_matrix(request.instances)
        if matrix is None:
            return None
        return matrix.shape[1], matrix, len(matrix)

    def _fast_matrix(self, instances: list[Any]) -> np.ndarray | None:
        """The common case without a Python walk over every value: numpy reads the rows
        without a dtype, and only plain numbers give a numeric array (text, nulls and ragged
        rows go to `to_matrix`, which explains or handles them)."""
        try:
            array = np.asarray(instances)
        except (ValueError, TypeError):
            return None
        if array.dtype.kind not in "biuf" or array.ndim != 2:
            return None
        n_features = self.rows.n_features
        if n_features is not None and array.shape[1] != n_features:
            return None
        return array.astype(np.float64, copy=False)

    def stack(self, parts: list[Any]) -> Any:
        return np.concatenate(parts)

    def predict(self, inputs: Any) -> Any:
        return self.rows.predict_matrix(inputs)


class _TensorStacker(_Stacker):
    def __init__(self, predictor: TensorPredictor) -> None:
        self.predictor = predictor

    def prepare(self, request: PredictRequest) -> tuple[Hashable | None, Any, int] | None:
        inputs: StackableInputs = self.predictor.to_inputs(request)
        key = inputs.stack_key if inputs.stackable else None
        return key, inputs, inputs.count

    def stack(self, parts: list[Any]) -> Any:
        return self.predictor.stack_inputs(parts)

    def predict(self, inputs: Any) -> Any:
        return self.predictor.predict_inputs(inputs)


def _stacker_for(predictor: Predictor) -> _Stacker | None:
    if isinstance(predictor, RowPredictor):
        return _RowStacker(predictor)
    if isinstance(predictor, TensorPredictor):
        return _TensorStacker(predictor)
    return None


Member = tuple[int, Any, int]  # (request id, prepared inputs, instance count)


class BatchAnswerer:
    """Turns a list of request frames into the bytes of their response frames.

    Holds no state between calls, so several threads may answer batches at once.
    """

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.stacker = _stacker_for(predictor)

    def answer(self, frames: list[Frame]) -> bytes:
        out: list[bytes] = []
        groups: dict[Hashable, list[Member]] = {}
        stacker = self.stacker
        for request_id, kind, payload in frames:
            if kind == PING:
                out.append(encode_frame(request_id, OK, PONG))
                continue
            try:
                request = parse_request(payload)
                prepared = stacker.prepare(request) if stacker else None
            except Exception as error:  # noqa: BLE001 - a bad request gets its own 400
                out.append(_error_frame(request_id, error))
                continue
            if stacker is None or prepared is None:
                predict = partial(self.predictor.predict_request, request)
                out.append(_answer_frame(request_id, len(request.instances), predict))
                continue
            key, inputs, count = prepared
            if key is None:
                out.append(_answer_frame(request_id, count, partial(stacker.predict, inputs)))
                continue
            groups.setdefault(key, []).append((request_id, inputs, count))
        for members in groups.values():
            out.extend(self._answer_group(members))
        return b"".join(out)

    def _answer_group(self, members: list[Member]) -> list[bytes]:
        stacker = self.stacker
        assert stacker is not None
        if len(members) > 1:
            total = sum(count for _, _, count in members)
            joint = _predict_or_none(stacker, members)
            if joint is not None and _count(joint) == total:
                return list(_split(members, joint))
        return [
            _answer_frame(request_id, count, partial(stacker.predict, inputs))
            for request_id, inputs, count in members
        ]


def _predict_or_none(stacker: _Stacker, members: list[Member]) -> Any:
    try:
        return stacker.predict(stacker.stack([inputs for _, inputs, _ in members]))
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


def _split(members: list[Member], joint: Any) -> Any:
    start = 0
    for request_id, _, count in members:
        end = start + count
        yield _answer_frame(request_id, count, partial(joint.__getitem__, slice(start, end)))
        start = end
