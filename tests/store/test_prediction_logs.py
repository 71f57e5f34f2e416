"""The prediction-log tables (request_logs, access_logs) on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import sqlalchemy as sa

from cairn.domain.errors import ApiError, Code
from cairn.store import MetadataStore, prediction_logs
from cairn.store.prediction_logs import LogQuery, PredictionLogStore

T0 = 1_800_000_000_000_000  # microseconds since the epoch


def request_row(at: int, version: str = "v1", *, table: str = "p.d.requests", model: str = "m",
                project: str = "p") -> dict[str, Any]:  # fmt: skip
    return {
        "table_name": table,
        "project": project,
        "model": model,
        "model_version": version,
        "time": at,
        "raw_data": f'{{"instances": [[{at}]]}}',
        "raw_prediction": '{"predictions": [1]}',
        "groundtruth": None,
        "truncated": False,
    }


def access_row(at: int, version: str = "v1", status: int = 200, model: str = "m") -> dict[str, Any]:
    return {
        "project": "p",
        "model": model,
        "model_version": version,
        "time": at,
        "latency_seconds": 0.0021,
        "status": status,
        "request_bytes": 31,
        "response_bytes": 20,
    }


def read_all(logs: PredictionLogStore, **query: Any) -> list[dict[str, Any]]:
    """Every row the query matches, page by page (pages of 3 exercise the cursor)."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = logs.read_requests(
            LogQuery(project="p", model="m", limit=3, after=cursor, **query)
        )
        rows.extend(page)
        if cursor is None:
            return rows


def test_rows_round_trip_with_the_bigquery_columns(store: MetadataStore) -> None:
    logs = store.prediction_logs
    logs.add([request_row(T0 + 123_456)], [access_row(T0, status=400)])
    (row,) = read_all(logs)
    assert row["time"] == T0 + 123_456
    assert {k: row[k] for k in ("model", "model_version", "raw_data", "raw_prediction")} == {
        "model": "m",
        "model_version": "v1",
        "raw_data": f'{{"instances": [[{T0 + 123_456}]]}}',
        "raw_prediction": '{"predictions": [1]}',
    }
    assert row["groundtruth"] is None and row["table_name"] == "p.d.requests"
    (access,), cursor = logs.read_accesses(LogQuery(project="p", model="m"))
    assert cursor is None
    assert (access["status"], access["latency_seconds"], access["request_bytes"]) == (
        400,
        0.0021,
        31,
    )


def test_pages_walk_newest_first_or_oldest_first_without_gaps(store: MetadataStore) -> None:
    logs = store.prediction_logs
    # Two rows share a time: the cursor must tell them apart.
    times = [T0 + i for i in range(7)] + [T0 + 3]
    logs.add([request_row(t) for t in times], [])
    newest = [row["time"] for row in read_all(logs)]
    assert newest == sorted(times, reverse=True)
    oldest = [row["time"] for row in read_all(logs, newest_first=False)]
    assert oldest == sorted(times)
    assert len({row["seq"] for row in read_all(logs)}) == len(times)


def test_filters_by_version_table_and_time(store: MetadataStore) -> None:
    logs = store.prediction_logs
    logs.add(
        [
            request_row(T0, "v1"),
            request_row(T0 + 10, "v2"),
            request_row(T0 + 20, "v1", table="p.d.other"),
            request_row(T0 + 30, "v1", model="other_model"),
            request_row(T0 + 40, "v1", project="other-project"),
        ],
        [],
    )
    assert [r["time"] for r in read_all(logs, version="v1")] == [T0 + 20, T0]
    assert [r["time"] for r in read_all(logs, table_name="p.d.other")] == [T0 + 20]
    assert [r["time"] for r in read_all(logs, since=T0 + 10)] == [T0 + 20, T0 + 10]
    assert [r["time"] for r in read_all(logs, until=T0 + 10)] == [T0]
    assert [r["time"] for r in read_all(logs, since=T0 + 10, until=T0 + 20)] == [T0 + 10]


def token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "bm90LWEtY3Vyc29y",  # "not-a-cursor"
        token("t1:99999999999999999999999:1"),  # past BIGINT: the database would overflow
        token(f"t1:{T0}:{2**63}"),
        token(f"t1:{T0}:-1"),
        token(f"t1:{-(2**63) - 1}:1"),
        token("t1:²:1"),
    ],
)
def test_a_cursor_we_did_not_issue_is_invalid_argument(store: MetadataStore, cursor: str) -> None:
    store.prediction_logs.add([request_row(T0)], [])
    for newest_first in (True, False):
        with pytest.raises(ApiError) as raised:
            store.prediction_logs.read_requests(
                LogQuery(project="p", model="m", after=cursor, newest_first=newest_first)
            )
        assert raised.value.code is Code.INVALID_ARGUMENT
        assert raised.value.field_violations[0].field == "pageToken"


def test_ground_truth_attaches_to_one_row_of_its_model_only(store: MetadataStore) -> None:
    logs = store.prediction_logs
    logs.add([request_row(T0), request_row(T0 + 1)], [])
    first, second = read_all(logs, newest_first=False)
    assert logs.set_groundtruth("p", "m", first["seq"], '{"label": 1}')
    assert not logs.set_groundtruth("p", "another_model", second["seq"], "x")
    assert not logs.set_groundtruth("p", "m", 10**9, "x")
    # Ids no row can have are "no such request", not an overflow in the database.
    assert not logs.set_groundtruth("p", "m", 10**30, "x")
    assert not logs.set_groundtruth("p", "m", 2**63, "x")
    # With a version, only a request of that version.
    assert not logs.set_groundtruth("p", "m", second["seq"], "x", version="v2")
    assert logs.set_groundtruth("p", "m", second["seq"], "y", version="v1")
    rows = read_all(logs, newest_first=False)
    assert [r["groundtruth"] for r in rows] == ['{"label": 1}', "y"]


def test_trim_keeps_the_newest_rows_of_each_table_and_model(store: MetadataStore) -> None:
    logs = store.prediction_logs
    logs.add(
        [request_row(T0 + i) for i in range(10)]
        + [request_row(T0 + i, table="p.d.small") for i in range(2)],
        [access_row(T0 + i) for i in range(6)] + [access_row(T0 + i, model="m2") for i in range(2)],
    )
    deleted = logs.trim(max_rows=4, max_total_rows=1000, older_than=0)
    assert deleted == 6 + 2
    kept = read_all(logs, table_name="p.d.requests")
    assert [r["time"] for r in kept] == [T0 + 9, T0 + 8, T0 + 7, T0 + 6]
    assert len(read_all(logs, table_name="p.d.small")) == 2
    accesses, _ = logs.read_accesses(LogQuery(project="p", model="m"))
    assert [r["time"] for r in accesses] == [T0 + 5, T0 + 4, T0 + 3, T0 + 2]
    assert len(logs.read_accesses(LogQuery(project="p", model="m2"))[0]) == 2


def test_trim_deletes_rows_past_the_retention_age(store: MetadataStore) -> None:
    logs = store.prediction_logs
    logs.add([request_row(T0), request_row(T0 + 100)], [access_row(T0), access_row(T0 + 100)])
    assert logs.trim(max_rows=1000, max_total_rows=1000, older_than=T0 + 50) == 2
    assert [r["time"] for r in read_all(logs)] == [T0 + 100]
    assert logs.count(requests=False) == 1


def test_many_rows_in_one_batch(store: MetadataStore) -> None:
    logs = store.prediction_logs
    logs.add([request_row(T0 + i) for i in range(2000)], [])
    assert logs.count() == 2000
    page, cursor = logs.read_requests(LogQuery(project="p", model="m", limit=1000))
    assert len(page) == 1000 and cursor is not None


def test_trim_counts_a_table_name_per_project(store: MetadataStore) -> None:
    """Table names are labels each project picks: another project's traffic into the same
    name must not push this project's rows out."""
    logs = store.prediction_logs
    logs.add([request_row(T0 + i, project="quiet") for i in range(3)], [])
    logs.add([request_row(T0 + 100 + i, project="busy") for i in range(10)], [])
    assert logs.trim(max_rows=4, max_total_rows=1000, older_than=0) == 6
    quiet, _ = logs.read_requests(LogQuery(project="quiet", model="m"))
    busy, _ = logs.read_requests(LogQuery(project="busy", model="m"))
    assert [r["time"] for r in quiet] == [T0 + 2, T0 + 1, T0]
    assert [r["time"] for r in busy] == [T0 + 109, T0 + 108, T0 + 107, T0 + 106]


def test_trim_bounds_each_table_over_all_projects_and_names(store: MetadataStore) -> None:
    """Many table names (or models) each under the per-group bound still fill the disk: the
    total bound keeps the newest rows over all of them."""
    logs = store.prediction_logs
    logs.add(
        [request_row(T0 + i, table=f"p.d.t{i}", project=f"p{i % 3}") for i in range(20)],
        [access_row(T0 + i, model=f"m{i}") for i in range(20)],
    )
    assert logs.trim(max_rows=5, max_total_rows=8, older_than=0) == 12 + 12
    assert logs.count() == 8 and logs.count(requests=False) == 8
    kept, _ = logs.read_accesses(LogQuery(project="p", model="m19"))
    assert len(kept) == 1
    assert logs.read_accesses(LogQuery(project="p", model="m11"))[0] == []


def test_trim_deletes_in_short_chunks(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prediction_logs, "TRIM_CHUNK", 7)
    logs = store.prediction_logs
    logs.add([request_row(T0 + i) for i in range(50)], [access_row(T0 + i) for i in range(30)])
    assert logs.trim(max_rows=1000, max_total_rows=1000, older_than=T0 + 40) == 40 + 30
    assert logs.trim(max_rows=3, max_total_rows=1000, older_than=0) == 7
    assert [r["time"] for r in read_all(logs)] == [T0 + 49, T0 + 48, T0 + 47]


def test_trimming_finds_old_rows_through_an_index(store: MetadataStore) -> None:
    """Deleting by age, and the total bound, start from the oldest rows of a whole table:
    without an index that starts with `time` each trim scans the table."""
    engine = sa.create_engine(store.url)
    try:
        inspector = sa.inspect(engine)
        indexes = {
            table: {tuple(index["column_names"]) for index in inspector.get_indexes(table)}
            for table in ("request_logs", "access_logs")
        }
    finally:
        engine.dispose()
    for table, columns in indexes.items():
        assert any(index[0] == "time" for index in columns), table
    assert ("project", "table_name", "time") in indexes["request_logs"]
    assert ("project", "model", "time") in indexes["access_logs"]


def test_truncated_rows_say_so(store: MetadataStore) -> None:
    logs = store.prediction_logs
    logs.add([{**request_row(T0), "truncated": True}, request_row(T0 + 1)], [])
    assert [r["truncated"] for r in read_all(logs, newest_first=False)] == [True, False]
