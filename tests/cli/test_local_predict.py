"""`cairn local predict` with a real scikit-learn model and each input format."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from cairn.cli.main import cli

ROWS = [[0.5, -1.0, 2.0, 0.1], [-2.0, 0.3, 0.0, 1.5]]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 4))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    directory = tmp_path / "model"
    directory.mkdir()
    joblib.dump(model, directory / "model.joblib")
    return directory


def expected(model_dir: Path) -> list[int]:
    return joblib.load(model_dir / "model.joblib").predict(np.array(ROWS)).tolist()


def run(
    *args: str, stdin: str | None = None, stdin_bytes: bytes | None = None
) -> tuple[int, str, str]:
    given = stdin_bytes if stdin_bytes is not None else stdin
    result = CliRunner().invoke(cli, ["local", "predict", *args], input=given)
    return result.exit_code, result.stdout, result.stderr


def test_json_instances_file(model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "rows.json"
    source.write_text("\n".join(orjson.dumps(row).decode() for row in ROWS) + "\n")
    code, out, _ = run("--model-dir", str(model_dir), "--json-instances", str(source))
    assert code == 0
    assert orjson.loads(out) == {"predictions": expected(model_dir)}


def test_json_request_from_stdin(model_dir: Path) -> None:
    request = "\ufeff" + orjson.dumps({"instances": ROWS}).decode()
    code, out, _ = run(
        "--model-dir",
        str(model_dir),
        "--framework",
        "scikit-learn",
        "--json-request",
        "-",
        stdin=request,
    )
    assert code == 0
    assert orjson.loads(out)["predictions"] == expected(model_dir)


def test_text_instances_reach_the_model_as_strings(model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "lines.txt"
    source.write_text("hello\nworld\n")
    code, _, err = run("--model-dir", str(model_dir), "--text-instances", str(source))
    assert code == 1
    assert "Prediction failed" in err


def test_exactly_one_input_flag(model_dir: Path) -> None:
    code, _, err = run("--model-dir", str(model_dir))
    assert code == 1  # like `cairn predict`: an ERROR line, not a usage dump
    assert "exactly one of" in err


def test_lines_split_on_newlines_only(model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "rows.json"
    source.write_bytes(b"[5.1, 3.5, 1.4, 0.2]\r\n[6.7, 3.0, 5.2, 2.3]\n")
    code, out, err = run("--model-dir", str(model_dir), "--json-instances", str(source))
    assert code == 0, err
    assert len(orjson.loads(out)["predictions"]) == 2
    code, _, err = run(
        "--model-dir", str(model_dir), "--json-instances", "-", stdin_bytes=b"\xff[1]\n"
    )
    assert code == 1 and "not UTF-8" in err and "Traceback" not in err


def test_bad_width_and_bad_lines(model_dir: Path, tmp_path: Path) -> None:
    code, _, err = run("--model-dir", str(model_dir), "--json-instances", "-", stdin="[1, 2]\n")
    assert code == 1
    assert "expects 4 features per instance, but got 2" in err
    code, _, err = run(
        "--model-dir", str(model_dir), "--json-instances", "-", stdin="[1, 2, 3, 4]\n\n[1]\n"
    )
    assert code == 1 and "line 2 is empty" in err


def test_missing_model_files(tmp_path: Path) -> None:
    code, _, err = run("--model-dir", str(tmp_path), "--json-instances", "-", stdin="[1]\n")
    assert code == 1
    assert "model.joblib" in err and "saved_model.pb" in err


def test_help_explains_inputs() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for flag in ("--model-dir", "--json-request", "--json-instances", "--text-instances"):
        assert flag in out
