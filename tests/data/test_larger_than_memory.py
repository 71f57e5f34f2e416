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
