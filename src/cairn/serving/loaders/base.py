"""What every loaded model offers the prediction node, and row-matrix handling shared by the
scikit-learn and XGBoost loaders.

`Predictor.predict` returns one entry per instance (a list or an ndarray, which the node
serialises straight from numpy). Row-based predictors also expose `to_matrix` and
`predict_matrix`, so a node can stack the rows of several concurrent requests and call the
model once: per-call library overhead, not arithmetic, dominates small predictions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from cairn.serving.errors import InvalidInputs
from cairn.serving.requests import PredictRequest


class Predictor(ABC):
    """A loaded model that answers a list of JSON instances."""

    framework: str

    @abstractmethod
    def predict(self, instances: list[Any], signature_name: str | None = None) -> Any:
        """One prediction per instance, as a list or an ndarray (first axis = instances)."""

    @abstractmethod
    def warmup_instances(self) -> list[Any] | None:
        """A synthetic valid request derived from the model, or None when it cannot tell."""

    def predict_request(self, request: PredictRequest) -> Any:
        """Answer a parsed request; framework models ignore its other top-level fields."""
        return self.predict(request.instances, request.signature_name)


class RowPredictor(Predictor):
    """A model fed a 2-D float matrix with one row of features per instance."""

    n_features: int | None = None

    def predict(self, instances: list[Any], signature_name: str | None = None) -> Any:
        matrix = self.to_matrix(instances)
        if matrix is None:
            return self.predict_objects(instances)
        return self.predict_matrix(matrix)

    def warmup_instances(self) -> list[Any] | None:
        if self.n_features is None:
            return None
        return [[0.0] * self.n_features]

    @abstractmethod
    def predict_matrix(self, matrix: np.ndarray) -> Any:
        """Predictions for a validated float matrix."""

    def predict_objects(self, instances: list[Any]) -> Any:
        """Predictions for instances that are not all numbers (e.g. text for a pipeline)."""
        raise InvalidInputs("each instance must be a list of numbers.")

    def to_matrix(self, instances: list[Any]) -> np.ndarray | None:
        """The instances as a float matrix, None when they hold non-numbers, or InvalidInputs."""
        return rows_to_matrix(instances, self.n_features)


def rows_to_matrix(instances: list[Any], n_features: int | None) -> np.ndarray | None:
    """Float matrix of the rows; nulls become NaN (missing). None: not all numeric."""
    if _holds_text(instances):
        # numpy would read "123" as 123.0: text goes to the object path, so an instance's
        # type never depends on the other instances of the request.
        _explain_non_numeric(instances, n_features)
        return None
    try:
        matrix = np.asarray(instances, dtype=np.float64)
    except (ValueError, TypeError):
        _explain_non_numeric(instances, n_features)
        return None
    if matrix.ndim == 1:
        if n_features not in (None, 1):
            raise InvalidInputs(
                f"each instance must be a list of {n_features} feature values, "
                f"but instance 0 is a single value ({instances[0]!r})."
            )
        return matrix.reshape(-1, 1)
    if matrix.ndim != 2:
        raise InvalidInputs(
            "each instance must be a flat list of feature values; "
            f"got lists nested {matrix.ndim - 1} deep."
        )
    if n_features is not None and matrix.shape[1] != n_features:
        raise InvalidInputs(
            f"the model expects {n_features} features per instance, but got "
            f"{matrix.shape[1]} in instance 0."
        )
    return matrix


def _holds_text(instances: list[Any]) -> bool:
    for row in instances:
        for value in row if isinstance(row, list) else (row,):
            if isinstance(value, str):
                return True
    return False


def _explain_non_numeric(instances: list[Any], n_features: int | None) -> None:
    """Raise for shapes no model takes; return when the rows may be text features."""
    widths = set()
    for index, row in enumerate(instances):
        if isinstance(row, dict):
            raise InvalidInputs(
                f"instance {index} is an object; scikit-learn and XGBoost models take each "
                "instance as a list of feature values, e.g. [1.0, 2.0, 3.0]."
            )
        width = len(row) if isinstance(row, list) else 1
        if n_features is not None and width != n_features:
            raise InvalidInputs(
                f"the model expects {n_features} features per instance, but got {width} in "
                f"instance {index}."
            )
        widths.add(width)
    if len(widths) > 1:
        raise InvalidInputs(
            f"instances have different numbers of values ({sorted(widths)}); every instance "
            "must have the same number of features."
        )
