"""`cairn predict` against a loopback server with canned answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.client.cli_runner import invoke
from tests.client.fake_ml import FakeMl, fake_ml_fixture  # noqa: F401  (fixture)
from tests.factories import sklearn_model_dir
from tests.remote import unique

MODEL = "/v1/projects/proj/models/m:predict"
VERSION = "/v1/projects/proj/models/m/versions/v2:predict"


def test_json_instances_from_stdin_and_a_table_of_scalars(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", MODEL, {"predictions": [1, 0]})
    result = invoke(
        fake_ml.url, "predict", "--model", "m", "--json-instances", "-",
        input="\ufeff[1.0, 2.0]\n[3.0, 4.0]\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake_ml.requests[0].json() == {"instances": [[1.0, 2.0], [3.0, 4.0]]}
    assert result.stdout.splitlines() == ["PREDICTIONS", "1", "0"]


def test_object_predictions_become_columns(fake_ml: FakeMl, tmp_path: Path) -> None:
    fake_ml.answer("POST", VERSION, {"predictions": [{"label": "a", "score": 0.9}]})
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"instances": [{"x": 1}], "other": "dropped"}))
    result = invoke(
        fake_ml.url, "predict", "--model", "m", "--version", "v2",
        "--json-request", str(request), "--signature-name", "serving_default",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake_ml.requests[0].json() == {
        "instances": [{"x": 1}],
        "signature_name": "serving_default",
    }
    assert result.stdout.splitlines() == ["LABEL  SCORE", "a      0.9"]


def test_nested_predictions_print_as_json(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", MODEL, {"predictions": [[0.1, 0.9]]})
    result = invoke(fake_ml.url, "predict", "--model", "m", "--text-instances", "-", input="hi\n")
    assert fake_ml.requests[0].json() == {"instances": ["hi"]}
    assert json.loads(result.stdout) == [[0.1, 0.9]]
    as_json = invoke(
        fake_ml.url, "predict", "--model", "m", "--text-instances", "-", "--format", "json",
        input="hi\n",
    )  # fmt: skip
    assert json.loads(as_json.stdout) == {"predictions": [[0.1, 0.9]]}


def test_exactly_one_input_flag(fake_ml: FakeMl, tmp_path: Path) -> None:
    data = tmp_path / "x.txt"
    data.write_text("a\n")
    none = invoke(fake_ml.url, "predict", "--model", "m")
    both = invoke(
        fake_ml.url, "predict", "--model", "m", "--text-instances", str(data),
        "--json-instances", str(data),
    )  # fmt: skip
    for result in (none, both):
        assert result.exit_code == 1
        assert "exactly one of --json-request, --json-instances" in result.stderr
    assert fake_ml.requests == []


def test_input_problems_are_named(fake_ml: FakeMl) -> None:
    empty_line = invoke(
        fake_ml.url, "predict", "--model", "m", "--json-instances", "-", input="[1]\n\n[2]\n"
    )
    assert "line 2 is empty" in empty_line.stderr
    too_many = invoke(
        fake_ml.url, "predict", "--model", "m", "--text-instances", "-", input="x\n" * 101
    )
    assert "at most 100 per request" in too_many.stderr
    assert fake_ml.requests == []


def test_a_prediction_error_string_is_shown(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", MODEL, {"error": "Prediction failed: bad shape"}, status=400)
    result = invoke(fake_ml.url, "predict", "--model", "m", "--json-instances", "-", input="[1]\n")
    assert result.exit_code == 1
    assert result.stderr == "ERROR: (cairn.predict) Prediction failed: bad shape\n"


# -- against a real `cairn server` ---------------------------------------------------------

E2E_PROJECT = "cli_predict"


@pytest.fixture(scope="module")
def deployed_model(cairn_server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A scikit-learn model deployed through the CLI as version v1 (the default)."""
    model = unique("cli_pmodel")
    artefact = sklearn_model_dir(tmp_path_factory.mktemp("export"))
    assert invoke(cairn_server.url, "models", "create", model, project=E2E_PROJECT).exit_code == 0
    created = invoke(
        cairn_server.url, "versions", "create", "v1", "--model", model,
        "--origin", str(artefact), "--framework", "scikit-learn", project=E2E_PROJECT,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    return model


@pytest.mark.slow
def test_predict_on_a_real_server(cairn_server: Any, deployed_model: str) -> None:
    rows = "[3.0, 3.0, 0.0, 0.0]\n[-3.0, -3.0, 0.0, 0.0]\n"
    by_model = invoke(
        cairn_server.url, "predict", "--model", deployed_model, "--json-instances", "-",
        input=rows, project=E2E_PROJECT,
    )  # fmt: skip
    assert by_model.exit_code == 0, by_model.output
    assert by_model.stdout.splitlines() == ["PREDICTIONS", "1", "0"]
    by_version = invoke(
        cairn_server.url, "predict", "--model", deployed_model, "--version", "v1",
        "--json-instances", "-", "--format", "json", input=rows, project=E2E_PROJECT,
    )  # fmt: skip
    assert json.loads(by_version.stdout) == {"predictions": [1, 0]}


@pytest.mark.slow
def test_bad_instances_on_a_real_server_exit_1(cairn_server: Any, deployed_model: str) -> None:
    result = invoke(
        cairn_server.url, "predict", "--model", deployed_model, "--json-instances", "-",
        input='["not", "numbers"]\n', project=E2E_PROJECT,
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("ERROR: (cairn.predict) ")
