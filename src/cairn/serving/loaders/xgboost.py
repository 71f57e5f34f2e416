"""XGBoost models: a Booster in model.bst/.json/.ubj, or a pickled Booster or XGBModel.

Boosters predict with `inplace_predict`, which skips building a DMatrix per request and is
the fastest path XGBoost offers; sklearn-style estimators keep their own `predict` semantics
(class labels for classifiers), as the user saw them in memory.

Each node predicts on one thread: small requests are dominated by OpenMP start-up and
contention (one row took ~2.7 ms with all threads against ~0.26 ms with one, measured on the
2-core dev machine); throughput grows with nodes and with the node's request batching.

A `model.bst` in XGBoost's legacy binary format (XGBoost < 2.1, e.g. AI Platform runtime
2.11's 1.7), which XGBoost 3 cannot read, is converted to JSON by `serving.legacy_xgboost`
(prepared at deploy time by `serving.legacy`, else in memory here: a directory nobody
prepared, or a file over the server's conversion limit) and checked against the original's
margins on synthetic rows before the node answers anything. Errors carry XGBoost's message
without its native stack trace.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from cairn.serving.errors import ModelLoadError, PredictionError
from cairn.serving.frameworks import XGBOOST
from cairn.serving.legacy_xgboost import (
    LegacyFormatError,
    is_legacy_binary,
    legacy_fix,
    load_conversion,
)
from cairn.serving.loaders.base import RowPredictor

_NATIVE_PREFIX = re.compile(r"^\[\d{2}:\d{2}:\d{2}\] [^\s:]+:\d+: ")


class BoosterPredictor(RowPredictor):
    framework = XGBOOST

    def __init__(self, booster: xgb.Booster) -> None:
        booster.set_param({"nthread": 1})
        self.booster = booster
        self.n_features = booster.num_features() or None
        # gblinear has no inplace_predict: it goes through a DMatrix.
        self.inplace = _booster_name(booster) != "gblinear"

    def predict_matrix(self, matrix: np.ndarray) -> Any:
        try:
            return predict_booster(self.booster, matrix, inplace=self.inplace)
        except Exception as error:  # noqa: BLE001
            raise PredictionError(
                f"Exception during xgboost prediction: {native_message(error)}"
            ) from None


class EstimatorPredictor(RowPredictor):
    framework = XGBOOST

    def __init__(self, estimator: Any) -> None:
        with contextlib.suppress(Exception):  # older estimators may lack n_jobs
            estimator.set_params(n_jobs=1)
        self.estimator = estimator
        self.n_features = getattr(estimator, "n_features_in_", None)

    def predict_matrix(self, matrix: np.ndarray) -> Any:
        try:
            return self.estimator.predict(matrix)
        except Exception as error:  # noqa: BLE001
            raise PredictionError(
                f"Exception during xgboost prediction: {native_message(error)}"
            ) from None


def predict_booster(
    booster: xgb.Booster, matrix: np.ndarray, *, inplace: bool, margin: bool = False
) -> Any:
    if inplace:
        return booster.inplace_predict(matrix, predict_type="margin" if margin else "value")
    return booster.predict(xgb.DMatrix(matrix), output_margin=margin)


def load_booster(path: Path) -> BoosterPredictor:
    with path.open("rb") as handle:
        head = handle.read(64)
    if not head:
        raise ModelLoadError(f"{path.name} is empty: export the trained model into it.")
    if is_legacy_binary(head):
        return BoosterPredictor(_load_legacy(path))
    try:
        booster = xgb.Booster(model_file=str(path))
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(
            f"Could not load the XGBoost model in {path.name}: {native_message(error)} "
            f"Check that it is complete; if it opens in the XGBoost that wrote it, re-save it "
            f"there with Booster.save_model('model.json') and deploy model.json instead."
        ) from None
    return BoosterPredictor(booster)


def _load_legacy(path: Path) -> xgb.Booster:
    """The converted legacy model, once its predictions match the original's."""
    try:
        conversion = load_conversion(path)
    except LegacyFormatError as error:
        raise ModelLoadError(
            f"{path.name} is not a JSON or UBJSON XGBoost model, and reading it as XGBoost's "
            f"legacy binary format failed: {error}. {legacy_fix(path.name)}"
        ) from None
    try:
        booster = xgb.Booster(model_file=bytearray(conversion.model_json))
        booster.set_param({"nthread": 1})
        inplace = _booster_name(booster) != "gblinear"
        margins = predict_booster(booster, conversion.rows, inplace=inplace, margin=True)
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(
            f"{path.name} (saved by {conversion.written_by} in the legacy binary format) was "
            f"converted to JSON, but XGBoost {xgb.__version__} could not use the result: "
            f"{native_message(error)} {legacy_fix(path.name)}"
        ) from None
    mismatch = conversion.mismatch(margins)
    if mismatch:
        raise ModelLoadError(
            f"{path.name} (saved by {conversion.written_by} in the legacy binary format) was "
            f"converted to JSON, but the check failed: {mismatch}. {legacy_fix(path.name)}"
        )
    how = "prepared at deploy time" if conversion.prepared else "converted in memory"
    print(
        f"{path.name}: {conversion.written_by} legacy binary model, served converted to JSON "
        f"({how}); predictions match the original's on {len(conversion.rows)} synthetic rows.",
        file=sys.stderr,
        flush=True,
    )
    return booster


def _booster_name(booster: xgb.Booster) -> str:
    try:
        return str(json.loads(booster.save_config())["learner"]["gradient_booster"]["name"])
    except (KeyError, ValueError, TypeError):
        return "gbtree"


def native_message(error: BaseException) -> str:
    """XGBoost's message without the native stack trace and source location it appends."""
    text = str(error).split("\nStack trace:", 1)[0].strip()
    text = _NATIVE_PREFIX.sub("", text)
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else f"{text}."


def predictor_for_object(model: Any, path: Path) -> RowPredictor:
    """Wrap an unpickled XGBoost object."""
    if isinstance(model, xgb.Booster):
        return BoosterPredictor(model)
    if isinstance(model, xgb.XGBModel):
        return EstimatorPredictor(model)
    raise ModelLoadError(
        f"{path} holds a {type(model).__module__}.{type(model).__name__}, not an XGBoost "
        "Booster or estimator. Set the framework to SCIKIT_LEARN or save an XGBoost model."
    )
