"""Rationalise before joining: per-source cleaning, key matching, every join's match rate."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from cairn.cli.main import cli
from cairn.data import PrepareResult, RecipeError, Workspace, join, load_recipe, prepare
from cairn.data.joins import KeyMatch, match_keys
from cairn.data.runner import stage_count
from cairn.domain.errors import ApiError

# 200 sales in three cities; 40 rows (20 %) spell the city differently from the lookup.
SPELLINGS = {
    "Boston": 60,
    "boston": 10,
    " BOSTON ": 5,
    "Bostn": 5,
    "New York": 50,
    "new-york": 10,
    "Chicago": 50,
    "Chicgo": 10,
}
MISSPELT = {"boston": 10, "Bostn": 5, "new-york": 10, "Chicgo": 10, " BOSTON ": 5}


def write_sources(folder: Path) -> None:
    cities = [city for city, n in SPELLINGS.items() for _ in range(n)]
    pd.DataFrame(
        {
            "id": range(len(cities)),
            "city": cities,
            "price": [100.0 + i for i in range(len(cities))],
            "y": [i % 2 for i in range(len(cities))],
        }
    ).to_csv(folder / "sales.csv", index=False)
    pd.DataFrame(
        {
            "city": ["Boston", "New York", "Chicago"],
            "region": ["Northeast", "Northeast", "Midwest"],
            "population": [650_000, 8_300_000, 2_700_000],
        }
    ).to_csv(folder / "cities.csv", index=False)


def recipe(folder: Path, sales: str = "{path: sales.csv}", join_options: str = "") -> Path:
    write_sources(folder)
    path = folder / "recipe.yaml"
    text = textwrap.dedent(
        """\
        sources:
          sales: SALES
          cities: {path: cities.csv}
        dataset:
          join:
            - {source: cities, on: cityJOIN}
        label: y
        split: {method: hash, key: id}
        output: {path: out, format: csv, report: false}
        """
    )
    path.write_text(text.replace("SALES", sales).replace("JOIN", join_options))
    return path


def joined_rows(result_files: dict[str, Path]) -> pd.DataFrame:
    return pd.concat(
        [pd.read_csv(p) for p in result_files.values() if p.stat().st_size], ignore_index=True
    )


def join_report(result: PrepareResult) -> dict[str, Any]:
    return next(r for r in result.reports if r.step == "join cities").details


def test_raw_spellings_leave_rows_unmatched_and_say_so(tmp_path: Path) -> None:
    result = prepare(recipe(tmp_path))
    details = join_report(result)
    assert details["left_rows"] == 200 and details["matched_rows"] == 160
    assert details["match_rate"] == 0.8 and details["unmatched_left_rows"] == 40
    top = {entry["key"]: entry["rows"] for entry in details["unmatched_keys"]}
    assert top == MISSPELT
    assert details["distinct_unmatched_keys"] == len(MISSPELT)
    rows = joined_rows(result.files)
    assert rows["region"].isna().sum() == 40, "the rows without a match really lack the lookup"
    assert len(result.warnings) == 1
    warning = result.warnings[0]
    assert "20.0% of rows (40 of 200)" in warning and "'new-york' (10 rows)" in warning
    assert "match: spellings" in warning and "max_unmatched" in warning


def test_cleaning_each_source_before_the_join_matches_every_row(tmp_path: Path) -> None:
    path = recipe(
        tmp_path,
        "\n    path: sales.csv\n    clean:\n"
        "      - {step: spellings, columns: [city], merge_suggestions: true}",
    )
    parsed = load_recipe(path)
    assert [s.name for s in parsed.source_clean["sales"]] == ["spellings"]
    messages: list[str] = []
    result = prepare(parsed, progress=messages.append)
    steps = [r.step for r in result.reports]
    assert steps.index("spellings (sales)") < steps.index("join cities")
    details = join_report(result)
    assert details["match_rate"] == 1.0 and details["unmatched_keys"] == []
    assert result.warnings == [] and "warning" not in details
    rows = joined_rows(result.files)
    assert rows["region"].notna().all() and set(rows["city"]) == {"Boston", "New York", "Chicago"}
    assert rows.groupby("city")["population"].first()["Chicago"] == 2_700_000
    assert "sources.sales.clean: spellings" in messages
    assert len(messages) == stage_count(parsed, report=False), "the progress bar's total holds"


def test_match_spellings_maps_keys_onto_the_lookup_and_lists_the_mapping(tmp_path: Path) -> None:
    result = prepare(recipe(tmp_path, join_options=", match: spellings"))
    details = join_report(result)
    assert details["match_rate"] == 1.0 and result.warnings == []
    mapping = {(m["value"], m["key"]): (m["rows"], m["how"]) for m in details["match"]["mapping"]}
    assert mapping == {
        ("boston", "Boston"): (10, "spelling"),
        ("new-york", "New York"): (10, "spelling"),
        ("Chicgo", "Chicago"): (10, "similar"),
        (" BOSTON ", "Boston"): (5, "spelling"),
        ("Bostn", "Boston"): (5, "similar"),
    }
    assert details["match"]["mapped_rows"] == 40
    rows = joined_rows(result.files)
    assert set(rows["city"]) == {"Boston", "New York", "Chicago"}, "keys take the lookup's spelling"
    assert rows["region"].notna().all()


def test_match_keeps_genuinely_different_keys_apart() -> None:
    vocabulary = ["Australia", "Columbia", "Colombia", "Zürich", "Bern"]
    counts = {"Austria": 30, "Austrailia": 4, "Colmbia": 3, "Zurich": 2, "BERN.": 5, "Berne": 1}
    found = match_keys(counts, vocabulary, KeyMatch())
    mapped = {value: key for value, (key, _, _) in found.mapped.items()}
    assert mapped == {"Austrailia": "Australia", "Zurich": "Zürich", "BERN.": "Bern"}
    assert "Austria" not in mapped, "a different country 0.875 alike is not a misspelling"
    assert "Berne" not in mapped, "below the default similarity: left for synonyms"
    assert sorted(found.ambiguous["Colmbia"]) == ["Colombia", "Columbia"]
    synonyms = match_keys({"Berne": 1}, vocabulary, KeyMatch(synonyms={"berne": "Bern"}))
    assert synonyms.mapped == {"Berne": ("Bern", "synonym", 1.0)}
    assert match_keys({"Austria": 1}, vocabulary, KeyMatch(similarity=0.85)).mapped == {
        "Austria": ("Australia", "similar", 0.875)
    }, "a lower threshold is the user's explicit choice"

    with Workspace() as ws:
        left = ws.register_frame(
            pd.DataFrame({"country": ["Austria", "Austrailia", "Colmbia", "Australia"]}), "visits"
        )
        right = ws.register_frame(
            pd.DataFrame({"country": ["Australia", "Columbia", "Colombia"], "code": [1, 2, 3]}),
            "countries",
        )
        out, report = join(ws, left, right, "country", match=KeyMatch(), max_unmatched=0.05)
        frame = ws.frame(out).set_index("country")
    assert frame.loc["Australia", "code"].tolist() == [1, 1]
    assert pd.isna(frame.loc["Austria", "code"]) and pd.isna(frame.loc["Colmbia", "code"])
    assert report.details["matched_rows"] == 2 and report.details["match_rate"] == 0.5
    assert report.details["match"]["ambiguous"][0]["value"] == "Colmbia"
    assert "add synonyms or lower `similarity`" in report.details["warning"]


def test_match_on_one_key_of_several() -> None:
    with Workspace() as ws:
        left = ws.register_frame(
            pd.DataFrame({"city": ["Bostn", "boston", "Chicago"], "year": [2020, 2021, 2020]}),
            "sales",
        )
        right = ws.register_frame(
            pd.DataFrame(
                {
                    "city": ["Boston", "Boston", "Chicago"],
                    "year": [2020, 2021, 2020],
                    "tax": [1, 2, 3],
                }
            ),
            "taxes",
        )
        out, report = join(ws, left, right, ["city", "year"], match=KeyMatch(columns=("city",)))
        assert sorted(ws.frame(out)["tax"]) == [1, 2, 3]
        assert report.details["match"]["columns"] == ["city"]
        with pytest.raises(ApiError, match="'year' is BIGINT here and BIGINT on the right"):
            join(ws, left, right, ["city", "year"], match=KeyMatch(columns=("year",)))
        with pytest.raises(ApiError, match="'town' is not a key of this join"):
            join(ws, left, right, ["city", "year"], match=KeyMatch(columns=("town",)))


def test_cli_prints_the_match_rate_and_the_warning(tmp_path: Path) -> None:
    path = recipe(tmp_path)
    path.write_text(path.read_text().replace("report: false", "report: true"))
    result = CliRunner().invoke(cli, ["data", "prepare", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "join cities: 200 -> 200 rows, 80.0% of rows matched" in result.output
    assert "WARNING: join cities: 20.0% of rows (40 of 200) found no match" in result.output
    assert "'new-york' (10 rows)" in result.output
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (
        "found no match"
        in next(r for r in saved if r["step"] == "join cities")["details"]["warning"]
    )
    html = (tmp_path / "out" / "report.html").read_text()
    assert '<p class="flag">Warning: join cities: 20.0% of rows' in html


def test_on_unmatched_fail_stops_naming_the_keys_and_the_line(tmp_path: Path) -> None:
    path = recipe(tmp_path, join_options=", on_unmatched: fail")
    with pytest.raises(RecipeError) as caught:
        prepare(path)
    message = caught.value.message
    assert message.startswith(f"{path}:6: ") and "20.0% of rows (40 of 200)" in message
    assert "'boston' (10 rows)" in message and "match: spellings" in message
    assert not list((tmp_path / "out").glob("*")), "no split is written"
    # A recipe-wide allowance above the unmatched share lets the same join through.
    text = path.read_text().replace("dataset:\n", "dataset:\n  max_unmatched: 0.25\n")
    path.write_text(text)
    result = prepare(path)
    assert result.warnings == [] and join_report(result)["max_unmatched"] == 0.25


def test_recipe_wide_fail_and_a_per_join_threshold(tmp_path: Path) -> None:
    path = recipe(tmp_path, join_options=", max_unmatched: 0.1")
    path.write_text(path.read_text().replace("dataset:\n", "dataset:\n  on_unmatched: fail\n"))
    with pytest.raises(RecipeError, match=r"recipe.yaml:7: join cities: 20.0% of rows"):
        prepare(path)


def test_a_lookup_deduplicated_before_the_join_is_many_to_one(tmp_path: Path) -> None:
    path = recipe(tmp_path, join_options=", match: spellings")
    lookup = pd.read_csv(tmp_path / "cities.csv")
    pd.concat([lookup, lookup]).to_csv(tmp_path / "cities.csv", index=False)
    with pytest.raises(RecipeError, match="not many-to-one.*per-source `clean:`"):
        prepare(path)
    text = path.read_text().replace(
        "cities: {path: cities.csv}",
        "cities: {path: cities.csv, clean: [{step: drop_duplicates}]}",
    )
    path.write_text(text)
    result = prepare(path)
    assert join_report(result)["match_rate"] == 1.0
    assert "drop_duplicates (cities)" in [r.step for r in result.reports]


def test_union_then_join_reads_the_union(tmp_path: Path) -> None:
    write_sources(tmp_path)
    sales = pd.read_csv(tmp_path / "sales.csv")
    sales.iloc[:100].to_csv(tmp_path / "a.csv", index=False)
    sales.iloc[100:].to_parquet(tmp_path / "b.parquet")
    path = tmp_path / "recipe.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            sources:
              a: {path: a.csv, clean: [{step: spellings, columns: [city]}]}
              b: {path: b.parquet}
              cities: {path: cities.csv}
            dataset:
              union: [b]
              join:
                - {source: cities, on: city, match: spellings, columns: [region]}
                - {source: cities, on: city, columns: [population], how: inner}
            split: {method: hash, key: id}
            output: {path: out, format: csv, report: false}
            """
        )
    )
    result = prepare(path)
    rows = joined_rows(result.files)
    assert len(rows) == 200 and rows["region"].notna().all()
    first, second = (r for r in result.reports if r.step == "join cities")
    assert first.details["match_rate"] == 1.0 and second.details["match_rate"] == 1.0
    assert second.rows_after == 200, "the second join sees the first join's matched spellings"


def test_match_rate_from_key_counts_agrees_with_the_joined_rows() -> None:
    with Workspace() as ws:
        left = ws.register_frame(
            pd.DataFrame(
                {
                    "a": ["x", "x", "y", "z", None, "x"],
                    "b": [1, 2, 1, 1, 1, 1],
                    "v": range(6),
                }
            ),
            "facts",
        )
        right = ws.register_frame(
            pd.DataFrame({"a": ["x", "x", "y", "y"], "b": [1, 2, 1, 1], "w": [10, 20, 30, 31]}),
            "dims",
        )
        out, report = join(ws, left, right, ["a", "b"], how="inner", many_to_one=False)
        joined = ws.frame(out)
        assert report.rows_after == len(joined) == 5
        assert report.details["matched_rows"] == 4 and report.details["left_rows"] == 6
        unmatched = {tuple(e["key"]): e["rows"] for e in report.details["unmatched_keys"]}
        assert unmatched == {("z", 1): 1, (None, 1): 1}, "NULL keys never match and are listed"
        out, report = join(ws, left, right, ["a", "b"], how="left", many_to_one=False)
        assert report.rows_after == ws.count(out) == 7
        # Under a lazy many-to-one left join the key counts may come from the table below it.
        dims = ws.register_frame(pd.DataFrame({"v": [0, 1, 2], "w": [1, 2, 3]}), "by_v")
        chained, _ = join(ws, left, dims, "v", lazy=True)
        lookup = ws.register_frame(pd.DataFrame({"b": [1], "flag": [True]}), "flags")
        out, from_base = join(ws, chained, lookup, "b", counts_from=left)
        _, from_chain = join(ws, chained, lookup, "b")
        assert from_base.details == from_chain.details
        assert from_base.details["match_rate"] == round(5 / 6, 4)
        assert ws.frame(out)["flag"].isna().sum() == from_base.details["unmatched_left_rows"]


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (
            ("sales: {path: sales.csv}", "sales: {path: sales.csv, clean: [{step: scrub}]}"),
            2,
            "sources.sales.clean: unknown step 'scrub'",
        ),
        (
            (
                "sales: {path: sales.csv}",
                "sales:\n    path: sales.csv\n    clean:\n      - {step: spellings, columns: [town]}",
            ),
            5,
            "no column 'town'",
        ),
        (
            ("on: city}", "on: city, match: fuzzy}"),
            6,
            "dataset.join.match: expected `exact`, `spellings`",
        ),
        (
            ("on: city}", "on: city, match: {spellings: {similarity: 2}}}"),
            6,
            "similarity: 2 is outside 0.5-1",
        ),
        (
            ("on: city}", "on: city, match: {spellings: {threshold: 0.9}}}"),
            6,
            "unknown option 'threshold'",
        ),
        (
            ("on: city}", "on: city, match: {spellings: {synonyms: {NYC: null}}}}"),
            6,
            "synonym 'NYC' has no target",
        ),
        (
            ("on: city}", "on: city, match: {spellings: {columns: []}}}"),
            6,
            "expected a list of key columns, got []",
        ),
        (("on: city}", "on: city, max_unmatched: 1.5}"), 6, "max_unmatched: expected a share"),
        (("on: city}", "on: city, on_unmatched: explode}"), 6, "use warn or fail"),
        (("dataset:\n", "dataset:\n  max_unmatched: -1\n"), 4, "dataset.max_unmatched"),
        (
            ("on: city}", "on: {price: population}, match: spellings}"),
            6,
            "spellings matching needs a text key; price is DOUBLE",
        ),
    ],
)
def test_bad_options_are_answered_with_the_recipe_line(
    tmp_path: Path, change: tuple[str, str], line: int, message: str
) -> None:
    path = recipe(tmp_path)
    text = path.read_text()
    assert change[0] in text
    path.write_text(text.replace(*change))
    with pytest.raises(RecipeError) as caught:
        prepare(path)
    assert f"recipe.yaml:{line}:" in caught.value.message, caught.value.message
    assert message in caught.value.message, caught.value.message
    assert not (tmp_path / "out").exists(), "nothing is written when the recipe is wrong"


def test_library_join_rejects_bad_thresholds() -> None:
    with Workspace() as ws:
        left = ws.register_frame(pd.DataFrame({"k": ["a"]}), "l")
        with pytest.raises(ApiError, match="use warn or fail"):
            join(ws, left, left, "k", on_unmatched="maybe")


@pytest.mark.parametrize(
    ("value", "vocabulary"),
    [
        ("Route 66", ["Route 6", "Route 7"]),
        ("Apartment 13", ["Apartment 12", "House 1"]),
        ("1601 Pennsylvania Ave", ["1600 Pennsylvania Ave"]),
        ("Highway 101", ["Highway 10"]),
        ("-1", ["1", "2"]),
        ("C++", ["C", "Java"]),
        ("C#", ["C"]),
    ],
)
def test_match_never_changes_a_keys_numbers_or_meaningful_marks(
    value: str, vocabulary: list[str]
) -> None:
    found = match_keys({value: 3}, vocabulary, KeyMatch(similarity=0.8))
    assert found.mapped == {} and found.ambiguous == {}


def test_match_still_maps_spellings_that_keep_the_numbers() -> None:
    vocabulary = ["Route 66", "Route 6", "C", "C++", "Customer 000002 Ltd", "-1", "1"]
    counts = {"route  66": 1, "Rout 66": 1, "c": 1, "c++": 1, "Custmer 000002 Ltd": 1, "-1": 1}
    mapped = {v: k for v, (k, _, _) in match_keys(counts, vocabulary, KeyMatch()).mapped.items()}
    assert mapped == {
        "route  66": "Route 66",
        "Rout 66": "Route 66",
        "c": "C",
        "c++": "C++",
        "Custmer 000002 Ltd": "Customer 000002 Ltd",
        "-1": "-1",
    }


def test_unmatched_warning_counts_null_keys_and_keys_never_compared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A budget of 2 comparisons: the two most frequent misspellings are compared (one form
    # each, in their own number group), the third is not.
    monkeypatch.setattr("cairn.data.joins._FUZZY_PAIRS", 2)
    with Workspace() as ws:
        left = ws.register_frame(
            pd.DataFrame({"k": ["Custmer 1", "Custmer 1", "Custmer 2", "Custmr 3", None, None]}),
            "sales",
        )
        right = ws.register_frame(
            pd.DataFrame({"k": ["Customer 1", "Customer 2", "Customer 3"], "w": [1, 2, 3]}),
            "customers",
        )
        _, report = join(ws, left, right, "k", match=KeyMatch(), max_unmatched=0.05)
    details = report.details
    assert details["null_key_rows"] == 2
    assert details["match"]["not_compared"] == 1 and details["match"]["not_compared_rows"] == 1
    warning = details["warning"]
    assert "2 of the unmatched rows have a NULL key" in warning
    assert "1 distinct keys (1 rows) were not compared" in warning
