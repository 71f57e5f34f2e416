"""Cleaning steps on small messy frames: each must change what it should and report it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cairn.data import Workspace, cleaning
from cairn.data.cleaning import parse_quantity, suggest_merges
from cairn.domain.errors import ApiError


def test_drop_and_impute_missing_with_indicator() -> None:
    frame = pd.DataFrame({"a": [1.0, None, 3.0, 5.0], "b": ["x", None, "x", "y"]})
    with Workspace() as ws:
        table = ws.register_frame(frame)
        dropped, report = cleaning.drop_missing(ws, table, ["a"])
        assert (report.rows_before, report.rows_after) == (4, 3)
        assert report.details["missing_per_column"] == {"a": 1}
        filled, report = cleaning.impute_missing(ws, table, ["a"], "median", add_indicator=True)
        out = ws.frame(filled)
        assert out["a"].tolist() == [1.0, 3.0, 3.0, 5.0]
        assert out["a_missing"].tolist() == [False, True, False, False]
        filled, _ = cleaning.impute_missing(ws, table, ["b"], "mode")
        assert ws.frame(filled)["b"].tolist() == ["x", "x", "x", "y"]
        with pytest.raises(ApiError, match="numeric"):
            cleaning.impute_missing(ws, table, ["b"], "mean")


def test_spellings_merge_case_whitespace_punctuation_and_synonyms() -> None:
    cities = ["New York", "new york ", "NEW-YORK", "New York", "NYC", "Boston", "boston.", "Bostn"]
    with Workspace() as ws:
        table = ws.register_frame(pd.DataFrame({"city": cities}))
        out, report = cleaning.normalize_spellings(
            ws, table, ["city"], synonyms={"nyc": "New York"}
        )
        values = ws.frame(out)["city"].tolist()
        assert values[:5] == ["New York"] * 5
        assert values[5:7] == ["Boston", "Boston"] and values[7] == "Bostn"
        assert ("Bostn", "Boston", pytest.approx(0.909, abs=0.01)) in report.details[
            "suggested_merges"
        ]["city"]
        merged, _ = cleaning.normalize_spellings(ws, table, ["city"], merge_suggestions=True)
        assert ws.frame(merged)["city"].tolist()[5:] == ["Boston"] * 3


def test_suggest_merges_ignores_distinct_categories() -> None:
    assert suggest_merges({"red": 10, "green": 8, "blue": 5}) == []


@pytest.mark.parametrize(
    ("text", "centimetres"),
    [
        ("5 ft 3 in", 160.02),
        ("160cm", 160.0),
        ("1.6 m", 160.0),
        ("5'3\"", 160.02),
        ("1,75 m", 175.0),
        ("63 inches", 160.02),
    ],
)
def test_parse_quantity_reads_mixed_units(text: str, centimetres: float) -> None:
    assert parse_quantity(text, "cm") == pytest.approx(centimetres, abs=0.01)


def test_parse_quantity_refuses_what_it_cannot_read() -> None:
    assert math.isnan(parse_quantity("tall", "cm"))
    assert math.isnan(parse_quantity("2 kg", "cm"))
    assert math.isnan(parse_quantity("170", "cm"))
    assert parse_quantity("170", "cm", default_unit="cm") == 170.0


def test_normalize_units_column_reports_unparsed() -> None:
    with Workspace() as ws:
        table = ws.register_frame(
            pd.DataFrame({"height": ["5 ft 3 in", "160cm", "1.6 m", "tall", None]})
        )
        out, report = cleaning.normalize_units(ws, table, "height", "m", on_unparsed="missing")
        heights = ws.frame(out)["height"].tolist()
    assert heights[:3] == pytest.approx([1.6002, 1.6, 1.6])
    assert pd.isna(heights[3]) and pd.isna(heights[4])
    assert report.details["unparsed"] == {"tall": 1}
    with Workspace() as ws, pytest.raises(ApiError, match="unknown unit"):
        cleaning.normalize_units(
            ws, ws.register_frame(pd.DataFrame({"h": ["1 m"]})), "h", "parsecs-ish"
        )


def test_outliers_flag_clip_drop() -> None:
    values = [10.0, 11, 12, 9, 10, 11, 500, None]
    with Workspace() as ws:
        table = ws.register_frame(pd.DataFrame({"x": values}))
        flagged, report = cleaning.handle_outliers(ws, table, ["x"], "iqr", "flag")
        assert ws.frame(flagged)["x_outlier"].tolist() == [False] * 6 + [True, False]
        assert report.details["outliers_per_column"] == {"x": 1}
        clipped, report = cleaning.handle_outliers(ws, table, ["x"], "iqr", "clip")
        high = report.details["bounds"]["x"][1]
        assert ws.frame(clipped)["x"].max() == pytest.approx(high)
        dropped, report = cleaning.handle_outliers(ws, table, ["x"], "zscore", "drop", threshold=2)
        assert report.rows_after == 7


def test_drop_duplicates_keeps_first_occurrence_in_order() -> None:
    frame = pd.DataFrame({"a": [1, 2, 1, 3, 2], "b": ["x", "y", "x", "z", "q"]})
    with Workspace() as ws:
        table = ws.register_frame(frame)
        out, report = cleaning.drop_duplicates(ws, table, keep_order=True)
        assert ws.frame(out)["a"].tolist() == [1, 2, 3, 2] and report.rows_removed == 1
        out, _ = cleaning.drop_duplicates(ws, table, ["a"], keep_order=True)
        assert ws.frame(out)["b"].tolist() == ["x", "y", "z"]


def test_label_issues_finds_a_deliberately_mislabeled_subset() -> None:
    rng = np.random.default_rng(0)
    n = 600
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    label = np.where(x1 + x2 > 0, "yes", "no")
    flipped = rng.choice(np.flatnonzero(np.abs(x1 + x2) > 1.0), size=30, replace=False)
    label[flipped] = np.where(label[flipped] == "yes", "no", "yes")
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": rng.choice(["r", "g"], n), "label": label})
    issues = cleaning.find_label_issues(frame, "label")
    found = {issue.index for issue in issues}
    assert len(found & set(flipped)) >= 27  # nearly all planted errors are found
    assert len(found - set(flipped)) <= 15  # and few correct labels are doubted
    first = issues[0]
    assert first.suggested != first.given and 0 <= first.self_confidence < 0.5


def test_label_issues_step_names_rows_of_the_whole_table() -> None:
    from cairn.data.steps import CLEAN_STEPS

    rng = np.random.default_rng(2)
    x = rng.normal(size=500)
    y = (x > 0).astype(int)
    planted = np.flatnonzero(np.abs(x) > 1.5)[:6]
    y[planted] = 1 - y[planted]
    with Workspace() as ws:
        table = ws.register_frame(pd.DataFrame({"x": x, "y": y}))
        out, report = CLEAN_STEPS["label_issues"][1](ws, table, {"label": "y", "max_rows": 400})
    assert out == table and report.rows_before == report.rows_after == 500
    rows = [issue["row"] for issue in report.details["issues"]]
    assert rows and set(rows) <= set(planted.tolist())
    for issue in report.details["issues"]:
        assert issue["given"] == str(y[issue["row"]])


def _tables(ws: Workspace) -> set[str]:
    return {row[0] for row in ws.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def test_drop_duplicates_without_order_keeps_one_whole_row_per_group() -> None:
    frame = pd.DataFrame(
        {
            "a": [1, 2, 1, 3, 2, None, None],
            "b": ["x", "y", "x", "z", "q", None, None],
            "c": [0.5, 1.5, 0.5, 2.5, None, 3.5, 3.5],
        }
    )
    with Workspace() as ws:
        table = ws.register_frame(frame)
        out, report = cleaning.drop_duplicates(ws, table)
        rows = ws.frame(out)
        expected = frame.drop_duplicates()
        assert (report.rows_before, report.rows_after) == (7, len(expected)) == (7, 5)
        assert sorted(map(str, rows.itertuples(index=False))) == sorted(
            map(str, expected.itertuples(index=False))
        )
        by_key, report = cleaning.drop_duplicates(ws, table, ["a"])
        kept = ws.frame(by_key)
        assert report.rows_after == 4 and kept["a"].isna().sum() == 1
        # Each kept row is a whole input row, not columns picked from several.
        originals = set(map(str, frame.itertuples(index=False)))
        assert set(map(str, kept.itertuples(index=False))) <= originals


def test_drop_duplicates_by_columns_keeps_whole_rows_over_threads_and_spills() -> None:
    """Every kept row must be one input row, also when the aggregate runs on several
    threads and spills: all columns come from one struct taken from a single row."""
    with Workspace(memory_limit="150MB", preserve_order=False) as ws:
        ws.con.execute("SET threads = 4")
        ws.con.execute(
            "CREATE TABLE src AS SELECT i % 5003 AS k, i AS a, (i * 7) % 1000003 AS b, "
            "'row ' || i AS c, CASE WHEN i % 3 = 0 THEN NULL ELSE i END AS d "
            "FROM range(600000) t(i)"
        )
        out, report = cleaning.drop_duplicates(ws, "src", ["k"])
        assert report.rows_after == 5003
        mixed = ws.con.execute(f"SELECT count(*) FROM (FROM {out} EXCEPT ALL FROM src)").fetchone()
        assert mixed == (0,)


def test_clean_steps_compose_views_and_store_rows_only_where_all_are_needed() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    frame = pd.DataFrame(
        {
            "id": np.arange(n) % 2500,  # 500 duplicate rows
            "x": rng.normal(size=n),
            "y": rng.choice([1.0, 2.0, None], n),
            "city": rng.choice(["Bern", "bern ", "Basel"], n),
        }
    )
    frame["x"] = frame["id"] * 0.001 + np.where(frame["id"] < 10, 1000.0, 0)  # 10 outliers
    with Workspace(preserve_order=False) as ws:
        table = ws.register_frame(frame)
        before = _tables(ws)
        deduped, dedupe = cleaning.drop_duplicates(ws, table)
        dropped, missing = cleaning.drop_missing(ws, deduped, ["y"])
        clipped, outliers = cleaning.handle_outliers(ws, dropped, ["x"], "iqr", "clip")
        spelled, spellings = cleaning.normalize_spellings(ws, clipped, ["city"])
        filled, imputed = cleaning.impute_missing(ws, spelled, ["x"], "median")
        # One stored copy of the rows (the dedupe's); every later step is a view over it.
        stored = _tables(ws) - before
        big = {t for t in stored if ws.count(t) > 100}
        assert len(big) == 1 and big <= {n for n in stored if n.startswith("_dedup")}
        views = {r[0] for r in ws.con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        assert {dropped, clipped, spelled, filled} <= views
        result = ws.frame(filled)
    expected = frame.drop_duplicates()
    assert (dedupe.rows_before, dedupe.rows_after) == (n, len(expected))
    expected = expected.dropna(subset=["y"])
    assert (missing.rows_before, missing.rows_after) == (dedupe.rows_after, len(expected))
    assert missing.details["missing_per_column"]["y"] == dedupe.rows_after - len(expected)
    assert outliers.rows_before == outliers.rows_after == len(expected)
    assert outliers.details["outliers_per_column"]["x"] == int((expected["id"] < 10).sum())
    assert spellings.rows_after == imputed.rows_after == len(result) == len(expected)
    assert set(result["city"]) <= {"Bern", "bern ", "Basel"} and len(set(result["city"])) == 2
    assert result["x"].max() == pytest.approx(outliers.details["bounds"]["x"][1])


def test_costly_inputs_are_stored_once_and_released_when_no_view_reads_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rows.csv"
    n = 200_000
    pd.DataFrame({"k": [1, 2, 2, None] * (n // 4), "city": ["a", "A", "b", "b"] * (n // 4)}).to_csv(
        path, index=False
    )
    with Workspace() as ws:
        ws.con.execute(f"CREATE VIEW rows AS SELECT * FROM read_csv('{path}')")
        pd.DataFrame({"k": [1, 2]}).to_csv(tmp_path / "lookup.csv", index=False)
        ws.con.execute(f"CREATE VIEW lookup AS SELECT * FROM read_csv('{tmp_path}/lookup.csv')")
        assert ws.costly("rows")  # each read parses a big CSV again
        assert not ws.costly("lookup")  # a small one parses in no time
        before = _tables(ws)
        dropped, report = cleaning.drop_missing(ws, "rows", ["k"])
        spelled, _ = cleaning.normalize_spellings(ws, dropped, ["city"])
        stored = {t for t in _tables(ws) - before if not t.startswith(("_map", "_fills"))}
        assert len(stored) == 1 and (report.rows_before, report.rows_after) == (n, n * 3 // 4)
        assert not ws.costly(dropped) and not ws.costly(spelled)
        # A step that stores its input lets the release drop the stored copy it replaced.
        deduped, _ = cleaning.drop_duplicates(ws, spelled)
        ws.release(spelled, deduped)
        assert not stored & _tables(ws)
        assert sorted(ws.frame(deduped)["k"].tolist()) == [1.0, 2.0, 2.0]


def test_recipe_dedupes_without_order_unless_asked_and_keeps_report_counts(
    tmp_path: Path,
) -> None:
    from cairn.data import prepare

    rows = pd.DataFrame({"id": [5, 3, 5, 1, 3, 4, 2, 6] * 3, "v": [1.0, None] * 12})
    rows["id"] = rows["id"] + np.repeat([0, 0, 100], 8)  # the third copy is new rows
    rows.to_csv(tmp_path / "rows.csv", index=False)
    recipe = (
        "sources:\n  rows: {path: rows.csv}\n"
        "clean:\n  - {step: drop_duplicates%s}\n  - {step: missing, columns: [v]}\n"
        "split: {method: hash, key: id, fractions: {train: 1.0, validation: 0.0, test: 0.0}}\n"
        "output: {path: out, format: csv, report: false}\n"
    )
    (tmp_path / "recipe.yaml").write_text(recipe % ", keep_order: true")
    ordered = prepare(tmp_path / "recipe.yaml")
    expected = rows.drop_duplicates()
    kept = expected.dropna()
    assert pd.read_csv(ordered.files["train"])["id"].tolist() == kept["id"].tolist()
    (tmp_path / "recipe.yaml").write_text(recipe % "")
    result = prepare(tmp_path / "recipe.yaml")
    assert sorted(pd.read_csv(result.files["train"])["id"]) == sorted(kept["id"])
    counts = {r.step: (r.rows_before, r.rows_after) for r in result.reports}
    assert counts["drop_duplicates"] == (24, len(expected)) == (24, 14)
    assert counts["missing (drop)"] == (14, len(kept)) and counts["split (hash)"] == (6, 6)
    split_report = next(r for r in result.reports if r.step.startswith("split"))
    assert split_report.details["sizes"] == {"train": 6, "validation": 0, "test": 0}


def test_rehearsal_names_the_step_whose_plan_fails_on_the_data(tmp_path: Path) -> None:
    from cairn.data import RecipeError, prepare

    pd.DataFrame({"x": [1.0, None, 3.0]}).to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(
        "sources:\n  rows: {path: rows.csv}\n"
        "clean:\n  - {step: drop_duplicates}\n"
        "  - {step: missing, columns: [x], strategy: constant, fill_value: lots}\n"
        "output: {path: out, report: false}\n"
    )
    with pytest.raises(RecipeError) as caught:
        prepare(tmp_path / "recipe.yaml")
    assert "recipe.yaml:5:" in caught.value.message and "step missing" in caught.value.message
    assert not (tmp_path / "out").exists()


def test_outliers_with_infinite_values_leave_undefined_fences_open() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, math.inf, math.inf, math.inf, -math.inf, 3.0]})
    with Workspace() as ws:
        table = ws.register_frame(frame)
        clipped, report = cleaning.handle_outliers(ws, table, ["x"], "iqr", "clip")
        assert report.details["bounds"]["x"] == [-math.inf, math.inf]
        assert ws.frame(clipped)["x"].tolist() == frame["x"].tolist()
        flagged, report = cleaning.handle_outliers(ws, table, ["x"], "zscore", "flag")
        assert report.details["outliers_per_column"] == {"x": 0}


def test_a_dedupe_after_an_ordered_one_keeps_the_first_copy_and_its_position() -> None:
    frame = pd.DataFrame({"a": [1, 2, 1, 3, 2, 3], "b": ["x", "y", "z", "w", "y", "v"]})
    with Workspace() as ws:
        table = ws.register_frame(frame)
        ordered, _ = cleaning.drop_duplicates(ws, table, keep_order=True, carry_position=True)
        assert ws.frame(ordered)["_cairn_pos"].tolist() == [1, 2, 3, 4, 6]
        by_key, report = cleaning.drop_duplicates(ws, ordered, ["a"])
        kept = ws.con.execute(f'SELECT a, b, _cairn_pos FROM "{by_key}" ORDER BY 3').fetchall()
        assert kept == [(1, "x", 1), (2, "y", 2), (3, "w", 4)] and report.rows_after == 3
