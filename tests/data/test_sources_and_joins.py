"""Sources (CSV sniffing, Parquet, JSON Lines, SQLite) and joins/unions in DuckDB."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from cairn.data import (
    SourceSpec,
    Workspace,
    join,
    load_source,
    normalize_column_name,
    sniff_csv,
    union,
)
from cairn.domain.errors import ApiError


def test_csv_sniffing_finds_latin1_semicolons_and_header(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes("name;city;age\nJosé;Zürich;31\nAnn;Bern;40\n".encode("latin-1"))
    dialect = sniff_csv(path)
    assert (dialect.encoding, dialect.delimiter, dialect.header) == ("latin-1", ";", True)
    with Workspace() as ws:
        frame = ws.frame(load_source(ws.con, SourceSpec("people", path=str(path))))
    assert list(frame.columns) == ["name", "city", "age"]
    assert frame.loc[0, "name"] == "José" and frame["age"].tolist() == [31, 40]


def test_csv_without_header_is_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("1,2.5,7\n3,4.5,8\n5,6.5,9\n")
    assert sniff_csv(path).header is False
    with Workspace() as ws:
        frame = ws.frame(load_source(ws.con, SourceSpec("n", path=str(path))))
    assert len(frame) == 3


def test_parquet_jsonl_and_sqlite_sources(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "city": ["a", "b", "c"]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    with sqlite3.connect(tmp_path / "t.db") as connection:
        frame.to_sql("cities", connection, index=False)
    specs = [
        SourceSpec("p", path=str(tmp_path / "t.parquet")),
        SourceSpec("j", path=str(tmp_path / "t.jsonl")),
        SourceSpec("s", url=f"sqlite:///{tmp_path / 't.db'}", table="cities"),
        SourceSpec(
            "q", url=f"sqlite:///{tmp_path / 't.db'}", query="SELECT * FROM cities WHERE id > 1"
        ),
    ]
    with Workspace() as ws:
        loaded = {s.name: ws.frame(load_source(ws.con, s)) for s in specs}
    for name in "pjs":
        assert loaded[name]["city"].tolist() == ["a", "b", "c"], name
    assert loaded["q"]["id"].tolist() == [2, 3]


def test_missing_file_and_bad_format_are_clear_errors(tmp_path: Path) -> None:
    with Workspace() as ws, pytest.raises(ApiError, match="does not exist"):
        load_source(ws.con, SourceSpec("x", path=str(tmp_path / "nope.csv")))
    with pytest.raises(ApiError, match="cannot tell the format"):
        SourceSpec("x", path="data.xyz").resolved_format()


def _frames(ws: Workspace) -> tuple[str, str]:
    left = ws.register_frame(
        pd.DataFrame({"id": [1, 2, 3, 4], "code": ["a", "b", "a", "z"], "v": [1.0, 2, 3, 4]}),
        "orders",
    )
    right = ws.register_frame(
        pd.DataFrame({"code": ["a", "b"], "v": [10, 20], "label": ["A", "B"]}), "codes"
    )
    return left, right


def test_left_join_keeps_rows_suffixes_clashes_and_counts_unmatched() -> None:
    with Workspace() as ws:
        left, right = _frames(ws)
        out, report = join(ws, left, right, on="code", how="left")
        frame = ws.frame(out).sort_values("id")
    assert len(frame) == 4 and report.details["unmatched_left_rows"] == 1
    assert frame["v_codes"].tolist()[:3] == [10, 20, 10] and pd.isna(frame["v_codes"].iloc[3])
    assert report.details["renamed"] == {"v": "v_codes"}


def test_inner_join_and_many_to_one_check() -> None:
    with Workspace() as ws:
        left, right = _frames(ws)
        out, _ = join(ws, left, right, on={"code": "code"}, how="inner")
        assert ws.count(out) == 3
        dup = ws.register_frame(pd.DataFrame({"code": ["a", "a"], "w": [1, 2]}), "dup")
        with pytest.raises(ApiError, match="not many-to-one"):
            join(ws, left, dup, on="code")
        out, _ = join(ws, left, dup, on="code", many_to_one=False, how="inner")
        assert ws.count(out) == 4


def test_union_normalises_names_renames_unifies_types_and_reports_conflicts() -> None:
    assert normalize_column_name("Dep. Delay (min)") == "dep_delay_min"
    assert normalize_column_name("heightCm") == "height_cm"
    with Workspace() as ws:
        a = ws.register_frame(
            pd.DataFrame({"Store ID": [1, 2], "Sales": [1.5, 2.5], "Note": ["x", "y"]}), "a"
        )
        b = ws.register_frame(
            pd.DataFrame(
                {"store_id": ["3", "4"], "revenue": [7, 8], "Note": [1, 2], "extra": [True, False]}
            ),
            "b",
        )
        c = ws.register_frame(
            pd.DataFrame({"store_id": ["5"], "revenue": [9], "Note": ["n/a"]}), "c"
        )
        out, step, report = union(ws, [a, b, c], renames={"revenue": "sales"})
        frame = ws.frame(out)
    assert step.rows_after == 5 and report.types["store_id"] in ("BIGINT", "INTEGER")
    assert frame["sales"].tolist() == [1.5, 2.5, 7.0, 8.0, 9.0]
    assert report.missing["extra"] == ["a", "c"]
    assert "note" in report.unreconciled  # text "x" cannot become a number, so it stays text
    assert frame["_source"].tolist() == ["a", "a", "b", "b", "c"]
