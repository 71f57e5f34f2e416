"""`cairn predict` against a loopback server with canned answers."""

from __future__ import annotations

import json
from pathlib import Path

from tests.client.cli_runner import invoke
from tests.client.fake_ml import FakeMl, fake_ml_fixture  # noqa: F401  (fixture)

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
    assert "at most 100 instances" in too_many.stderr
    assert fake_ml.requests == []


def test_a_prediction_error_string_is_shown(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", MODEL, {"error": "Prediction failed: bad shape"}, status=400)
    result = invoke(fake_ml.url, "predict", "--model", "m", "--json-instances", "-", input="[1]\n")
    assert result.exit_code == 1
    assert result.stderr == "ERROR: (cairn.predict) Prediction failed: bad shape\n"
