"""scikit-learn models: `model.joblib` (joblib) or `model.pkl` (pickle), served with `predict`."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from cairn.serving.errors import ModelLoadError, PredictionError
from cairn.serving.frameworks import SCIKIT_LEARN
from cairn.serving.loaders.base import RowPredictor


class SklearnPredictor(RowPredictor):
    framework = SCIKIT_LEARN

    def __init__(self, model: Any) -> None:
        if not callable(getattr(model, "predict", None)):
            raise ModelLoadError(
                f"The loaded object ({type(model).__module__}.{type(model).__name__}) has no "
                "predict method; save a fitted scikit-learn estimator or Pipeline."
            )
        self.model = model
        self.n_features = _int_or_none(getattr(model, "n_features_in_", None))
        self._predict = model.predict

    def predict_matrix(self, matrix: np.ndarray) -> Any:
        try:
            return self._predict(matrix)
        except Exception as error:  # noqa: BLE001 - any model failure is the request's answer
            raise PredictionError(f"Exception during sklearn prediction: {error}") from None

    def predict_objects(self, instances: list[Any]) -> Any:
        return self.predict_matrix(instances)  # type: ignore[arg-type]


def load_pickled(path: Path) -> Any:
    """The object in model.joblib (joblib) or model.pkl (pickle), as AI Platform loads them."""
    try:
        if path.suffix == ".joblib":
            import joblib

            return joblib.load(path)
        with path.open("rb") as handle:
            return pickle.load(handle)
    except Exception as error:  # noqa: BLE001 - unpickling raises anything
        raise ModelLoadError(
            f"Could not load the model from {path}: {type(error).__name__}: {error}. "
            "Check that the file is a complete joblib/pickle export made with compatible "
            "library versions."
        ) from None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
