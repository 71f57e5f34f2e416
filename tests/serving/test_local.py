"""In-process predictions and instance validation, per framework."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
import xgboost as xgb

from cairn.domain.errors import ApiError, Code
from cairn.serving import predict_local

from .conftest import sklearn_model

ROWS = [[0.5, -1.0, 2.0, 0.1], [-2.0, 0.3, 0.0, 1.5], [0.0, 0.0, 0.0, 0.0]]


def test_sklearn_matches_model(sklearn_dir: Path) -> None:
    expected = sklearn_model(sklearn_dir).predict(np.array(ROWS)).tolist()
    assert predict_local(sklearn_dir, None, ROWS) == expected
    assert predict_local(sklearn_dir, "scikit-learn", ROWS) == expected


def test_booster_matches_dmatrix_predict(booster_dir: Path) -> None:
    model_file = next(booster_dir.iterdir())
    booster = xgb.Booster(model_file=str(model_file))
    expected = booster.predict(xgb.DMatrix(np.array(ROWS))).tolist()
    assert predict_local(booster_dir, "XGBOOST", ROWS) == pytest.approx(expected)


def test_xgb_classifier_gives_labels(xgb_classifier_dir: Path) -> None:
    classifier = joblib.load(xgb_classifier_dir / "model.joblib")
    expected = classifier.predict(np.array(ROWS)).tolist()
    assert predict_local(xgb_classifier_dir, None, ROWS) == expected


def test_pickled_booster(pickled_booster_dir: Path) -> None:
    predictions = predict_local(pickled_booster_dir, None, ROWS)
    assert len(predictions) == 3 and all(0.0 <= p <= 1.0 for p in predictions)


@pytest.mark.parametrize(
    ("instances", "words"),
    [
        ([], "empty"),
        ("abc", "must be a list"),
        ([[1.0, 2.0, 3.0]], "expects 4 features per instance, but got 3"),
        ([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]], "expects 4 features per instance, but got 2"),
        ([{"a": 1}], "is an object"),
        ([1.0], "single value"),
        ([[[1.0, 2.0, 3.0, 4.0]]], "nested"),
    ],
)
def test_bad_instances(sklearn_dir: Path, instances: object, words: str) -> None:
    with pytest.raises(ApiError) as caught:
        predict_local(sklearn_dir, None, instances)  # type: ignore[arg-type]
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert caught.value.message.startswith("Prediction failed: ")
    assert words in caught.value.message


def test_text_in_numeric_model_is_reported(sklearn_dir: Path) -> None:
    with pytest.raises(ApiError, match="Exception during sklearn prediction"):
        predict_local(sklearn_dir, None, [["a", "b", "c", "d"]])


def test_corrupt_model(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"this is not a pickle")
    with pytest.raises(ApiError) as caught:
        predict_local(tmp_path, "SCIKIT_LEARN", ROWS)
    assert caught.value.code is Code.FAILED_PRECONDITION
    assert "Could not load the model" in caught.value.message


def test_framework_mismatch(sklearn_dir: Path) -> None:
    with pytest.raises(ApiError, match="not an XGBoost model"):
        predict_local(sklearn_dir, "XGBOOST", ROWS)
