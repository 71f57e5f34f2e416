"""Cleaning steps on small messy frames: each must change what it should and report it."""

from __future__ import annotations

import math

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
        out, report = cleaning.normalize_units(ws, table, "height", "m")
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
        out, report = cleaning.drop_duplicates(ws, table)
        assert ws.frame(out)["a"].tolist() == [1, 2, 3, 2] and report.rows_removed == 1
        out, _ = cleaning.drop_duplicates(ws, table, ["a"])
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
