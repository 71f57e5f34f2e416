"""scikit-learn models: `model.joblib` (joblib) or `model.pkl` (pickle), served with `predict`.

Models that predict with OpenMP (HistGradientBoosting, ...) run it on one thread in each
thread that predicts, as XGBoost nodes do: a one-row HistGradientBoostingClassifier
predict took 1-38 ms with OpenMP's default threads on the loaded 2-core dev machine, 0.22 ms
on one. Throughput comes from nodes and cross-request batching instead.
"""

from __future__ import annotations

import pickle
import threading
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
        if not getattr(_openmp, "limited", False):
            _limit_openmp_threads()
        try:
            return self._predict(matrix)
        except Exception as error:  # noqa: BLE001 - any model failure is the request's answer
            raise PredictionError(f"Exception during sklearn prediction: {error}") from None

    def predict_objects(self, instances: list[Any]) -> Any:
        return self.predict_matrix(instances)  # type: ignore[arg-type]


# OpenMP's thread count is per calling thread, so each predicting thread limits its own once.
_openmp = threading.local()


def _limit_openmp_threads() -> None:
    _openmp.limited = True
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="openmp")
    except Exception:  # noqa: BLE001 - no OpenMP runtime loaded: nothing to limit
        pass


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
