"""`cairn data ...`: the commands run in-process on real files and report clearly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cairn.cli.main import cli


def run(*args: str, home: Path | None = None) -> tuple[int, str]:
    env = {"CAIRN_HOME": str(home)} if home else {}
    result = CliRunner().invoke(cli, ["data", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def messy_csv(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    pd.DataFrame(
        {
            "id": [1, 2, 2, 3, 4, 5, 6, 7],
            "city": ["Bern", "bern ", "bern ", "BERN", "Basel", "basel", "Basel", "Zug"],
            "height": ["5 ft 3 in", "160cm", "160cm", "1.6 m", "170 cm", "6 ft", "1.8m", "175cm"],
            "score": [1.0, 2.0, 2.0, None, 3.0, 2.5, 2.0, 900.0],
            "y": [0, 1, 1, 0, 1, 0, 1, 0],
        }
    ).to_csv(path, index=False)
    return path


def test_help_lists_every_command() -> None:
    code, output = run("--help")
    assert code == 0
    for command in ("prepare", "profile", "split", "clean"):
        assert command in output
    for command in ("prepare", "profile", "split", "clean"):
        code, output = run(command, "--help")
        assert code == 0 and "Usage:" in output


def test_clean_applies_steps_in_order_and_reports_rows(messy_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "clean.csv"
    code, output = run(
        "clean",
        str(messy_csv),
        "-o",
        str(out),
        "--dedupe",
        "--drop-missing",
        "score",
        "--spellings",
        "city",
        "--units",
        "height=cm",
        "--outliers",
        "score",
        "--outlier-action",
        "drop",
    )
    assert code == 0, output
    frame = pd.read_csv(out)
    assert len(frame) == 5 and set(frame["city"]) == {"Basel", "Bern"}
    assert frame.sort_values("id")["height"].iloc[0] == pytest.approx(160.02)
    assert "drop_duplicates: 8 -> 7 rows" in output


def test_split_writes_three_files_into_a_local_bucket(messy_csv: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, output = run(
        "split",
        str(messy_csv),
        "-o",
        "gs://bucket/splits",
        "--method",
        "hash",
        "--key",
        "id",
        "--train",
        "0.6",
        "--validation",
        "0.2",
        "--test",
        "0.2",
        "--output-format",
        "csv",
        home=home,
    )
    assert code == 0, output
    folder = home / "storage" / "bucket" / "splits"
    sizes = [len(pd.read_csv(folder / f"{n}.csv")) for n in ("train", "validation", "test")]
    assert sum(sizes) == 8


def test_profile_writes_a_report(messy_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "profile.html"
    code, output = run("profile", str(messy_csv), "-o", str(out), "--place", "city")
    assert code == 0, output
    assert "<svg" in out.read_text()


def test_errors_say_what_to_do(messy_csv: Path, tmp_path: Path) -> None:
    code, output = run("profile", str(tmp_path / "missing.csv"))
    assert code != 0 and "does not exist" in output
    code, output = run(
        "split",
        str(messy_csv),
        "-o",
        str(tmp_path / "s"),
        "--train",
        "0.1",
        "--validation",
        "0.6",
        "--test",
        "0.3",
    )
    assert code == 1 and "train > validation" in output
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"sources:\n  people: {{path: {messy_csv}}}\nclean:\n  - {{step: scrub}}\n")
    code, output = run("prepare", str(recipe))
    assert code == 1 and "recipe.yaml:4: clean: unknown step 'scrub'" in output


def test_prepare_runs_a_recipe(messy_csv: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"sources:\n  people: {{path: {messy_csv}}}\n"
        "clean:\n  - {step: drop_duplicates}\n"
        "label: y\nsplit: {method: hash, key: id, fractions: {train: 0.5, validation: 0.3, test: 0.2}}\n"
        "preprocess:\n  - {step: units, columns: [height], unit: m}\n  - {step: onehot, columns: [city]}\n"
    )
    code, output = run("prepare", str(recipe), "-o", str(tmp_path / "out"), "--no-report")
    assert code == 0, output
    assert (tmp_path / "out" / "preparation.joblib").exists() and "pipeline:" in output
    code, output = run("prepare", str(recipe), "--check")
    assert code == 0 and "looks good" in output
