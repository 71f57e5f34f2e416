"""A recipe over more data than DuckDB may hold in memory spills to disk instead of crashing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from cairn.data import prepare


@pytest.mark.slow
def test_recipe_runs_under_a_memory_limit_smaller_than_the_data(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT i AS id, i % 1000 AS shop, repeat('x', 40) || (i % 977)::VARCHAR AS note, "
        "random() AS v, CASE WHEN i % 50 = 0 THEN NULL ELSE i % 7 END AS w "
        f"FROM range(2000000) t(i)) TO '{tmp_path}/big.parquet' (FORMAT parquet)"
    )
    con.execute(
        "COPY (SELECT i AS shop, 'city' || (i % 10)::VARCHAR AS city FROM range(1000) t(i)) "
        f"TO '{tmp_path}/shops.csv' (HEADER)"
    )
    con.close()
    (tmp_path / "recipe.yaml").write_text(
        "sources:\n  big: {path: big.parquet}\n  shops: {path: shops.csv}\n"
        "dataset:\n  join: [{source: shops, on: shop}]\n"
        "clean:\n  - {step: drop_duplicates}\n  - {step: missing, columns: [w], strategy: drop}\n"
        "  - {step: outliers, columns: [v], action: clip}\n"
        "split: {method: random, seed: 1}\noutput: {path: out, report: false}\n"
    )
    # About 150 MB of rows against a 100 MB limit.
    result = prepare(tmp_path / "recipe.yaml", memory_limit="100MB")
    rows = sum(pq.ParquetFile(path).metadata.num_rows for path in result.files.values())
    assert rows == 2_000_000 - 2_000_000 // 50


def test_a_dedupe_over_four_lazy_joins_completes_at_100_mb(tmp_path: Path) -> None:
    """The dedupe's aggregate and four lazy hash joins need more than 100 MB together (the
    recipe failed so, three runs out of three): the step runs again over its stored input."""
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT i AS id, i % 1000 AS shop, i % 500 AS maker, i % 97 AS city, "
        "(i // 1000) % 400 AS day, repeat('x', 60) || (i % 977)::VARCHAR AS note, "
        "random() AS v, CASE WHEN i % 50 = 0 THEN NULL ELSE i % 7 END AS w "
        f"FROM range(3000000) t(i)) TO '{tmp_path}/big.parquet' (FORMAT parquet)"
    )
    lookups = {
        "shops": "SELECT i AS shop, 'shop name ' || i AS shop_name, i * 1.5 AS area "
        "FROM range(1000) t(i)",
        "makers": "SELECT i AS maker, 'maker ' || i AS maker_name, 1900 + i % 100 AS founded "
        "FROM range(500) t(i)",
        "cities": "SELECT i AS city, 'city ' || i AS city_name, i * 0.1 AS lat, i * 0.2 AS lon "
        "FROM range(97) t(i)",
        "weather": "SELECT c AS city, d AS day, random() AS temp, random() AS wind "
        "FROM range(97) a(c), range(400) b(d)",
    }
    for name, sql in lookups.items():
        con.execute(f"COPY ({sql}) TO '{tmp_path}/{name}.csv' (HEADER)")
    con.close()
    (tmp_path / "recipe.yaml").write_text(
        "sources:\n  big: {path: big.parquet}\n"
        + "".join(f"  {name}: {{path: {name}.csv}}\n" for name in lookups)
        + "dataset:\n  join:\n    - {source: shops, on: shop}\n    - {source: makers, on: maker}\n"
        "    - {source: cities, on: city}\n    - {source: weather, on: [city, day]}\n"
        "clean:\n  - {step: drop_duplicates}\n  - {step: missing, columns: [w], strategy: drop}\n"
        "  - {step: outliers, columns: [v], action: clip}\n"
        "split: {method: random, seed: 1}\noutput: {path: out, report: false}\n"
    )
    result = prepare(tmp_path / "recipe.yaml", memory_limit="100MB")
    rows = sum(pq.ParquetFile(path).metadata.num_rows for path in result.files.values())
    assert rows == 3_000_000 - 3_000_000 // 50
    written = pq.ParquetFile(result.files["train"]).schema_arrow.names
    assert {"shop_name", "maker_name", "city_name", "temp"} <= set(written)
