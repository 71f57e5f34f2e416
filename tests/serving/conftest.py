"""Real models trained on tiny data, written as AI Platform model directories."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cairn.serving import ServingManager


def training_data(rows: int = 60, features: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, features))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return x, y


@pytest.fixture
def sklearn_dir(tmp_path: Path) -> Path:
    x, y = training_data()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    directory = tmp_path / "sklearn"
    directory.mkdir()
    joblib.dump(pipeline, directory / "model.joblib")
    return directory


def sklearn_model(directory: Path):  # type: ignore[no-untyped-def]
    return joblib.load(directory / "model.joblib")


def make_booster() -> xgb.Booster:
    x, y = training_data()
    return xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(x, label=y), 5)


@pytest.fixture(params=["model.bst", "model.json", "model.ubj"])
def booster_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    directory = tmp_path / "booster"
    directory.mkdir()
    make_booster().save_model(str(directory / request.param))
    return directory


@pytest.fixture
def xgb_classifier_dir(tmp_path: Path) -> Path:
    x, y = training_data()
    classifier = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    directory = tmp_path / "xgbclf"
    directory.mkdir()
    joblib.dump(classifier, directory / "model.joblib")
    return directory


@pytest.fixture
def pickled_booster_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "pickled_booster"
    directory.mkdir()
    with (directory / "model.pkl").open("wb") as handle:
        pickle.dump(make_booster(), handle)
    return directory


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ServingManager]:
    mgr = ServingManager(tmp_path / "serving")
    yield mgr
    mgr.shutdown()
