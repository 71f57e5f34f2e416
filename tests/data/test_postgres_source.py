"""A PostgreSQL source read by URL from a real throwaway server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from tests.store.postgres_harness import PostgresCluster, missing_reason, start_cluster

from cairn.data import SourceSpec, Workspace, load_source


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    started = start_cluster()
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.slow
def test_postgres_table_and_query_sources(cluster: PostgresCluster) -> None:
    url = cluster.create_database()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE shops (id integer, city text, sales double precision)")
        )
        connection.execute(
            sa.text(
                "INSERT INTO shops SELECT i, 'c' || (i % 3), i * 1.5 FROM generate_series(1, 120000) i"
            )
        )
    engine.dispose()
    with Workspace() as ws:
        table = ws.frame(load_source(ws.con, SourceSpec("shops", url=url, table="shops")))
        assert len(table) == 120000 and table["sales"].sum() == pytest.approx(
            1.5 * 120000 * 120001 / 2
        )
        query = SourceSpec(
            "big", url=url, query="SELECT city, count(*) AS n FROM shops GROUP BY city"
        )
        grouped = ws.frame(load_source(ws.con, query))
    assert sorted(grouped["n"].tolist()) == [40000, 40000, 40000]
