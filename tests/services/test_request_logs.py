"""The prediction-log writer (bounded queue, batches, drops) and requestLoggingConfig checks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cairn.domain.errors import ApiError, Code
from cairn.domain.models import RequestLoggingConfig
from cairn.services import request_logs
from cairn.services.request_logs import (
    LoggingPolicy,
    PredictionLogWriter,
    RequestLogService,
    _tail_lines,
    check_request_logging_config,
    logging_policy,
)
from cairn.store import MetadataStore
from cairn.store.prediction_logs import LogQuery

POLICY = LoggingPolicy("p", "m", "v1", sampling=1.0, table_name="p.d.t", access_log=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    opened = MetadataStore(f"sqlite:///{tmp_path / 'cairn.db'}")
    yield opened
    opened.close()


def violation(config: RequestLoggingConfig) -> str:
    with pytest.raises(ApiError) as raised:
        check_request_logging_config(config)
    assert raised.value.code is Code.INVALID_ARGUMENT
    return raised.value.field_violations[0].field


def test_sampling_is_a_fraction_and_needs_a_table() -> None:
    for good in (
        RequestLoggingConfig(),
        RequestLoggingConfig(sampling_percentage=0.0),
        RequestLoggingConfig(sampling_percentage=1.0, bigquery_table_name="my-proj.ds.requests"),
        RequestLoggingConfig(sampling_percentage=0.25, bigquery_table_name="test_project.d.t"),
        RequestLoggingConfig(bigquery_table_name="p.d.t"),
    ):
        check_request_logging_config(good)
    field = "version.request_logging_config."
    assert violation(
        RequestLoggingConfig(sampling_percentage=1.5, bigquery_table_name="p.d.t")
    ) == (field + "sampling_percentage")
    assert violation(
        RequestLoggingConfig(sampling_percentage=-0.1, bigquery_table_name="p.d.t")
    ) == (field + "sampling_percentage")
    assert violation(RequestLoggingConfig(sampling_percentage=0.5)) == field + "bigquery_table_name"
    for bad_name in ("table", "p.d", "p.d.t.x", "p..t", "p.d s.t", "p.d.t;drop"):
        config = RequestLoggingConfig(sampling_percentage=0.5, bigquery_table_name=bad_name)
        assert violation(config) == field + "bigquery_table_name", bad_name


def test_policy_from_documents_logs_only_what_is_configured() -> None:
    sampled = {"requestLoggingConfig": {"samplingPercentage": 0.5, "bigqueryTableName": "p.d.t"}}
    assert logging_policy("p", "m", "v1", {}, {}) is None
    assert (
        logging_policy("p", "m", "v1", {}, {"requestLoggingConfig": {"samplingPercentage": 0}})
        is None
    )
    policy = logging_policy("p", "m", "v1", {}, sampled)
    assert policy is not None and (policy.sampling, policy.access_log) == (0.5, False)
    access = logging_policy("p", "m", "v1", {"onlinePredictionLogging": True}, {})
    assert access is not None and access.access_log and access.sampling == 0.0


def test_a_full_queue_drops_and_counts_instead_of_waiting(store: MetadataStore) -> None:
    writer = PredictionLogWriter(store.prediction_logs, queue_size=3)  # thread not started
    for index in range(5):
        writer.offer_request(POLICY, 1_800_000_000_000_000 + index, b'{"instances": [[1]]}', b"{}")
    assert (writer.accepted, writer.dropped) == (3, 2)
    assert writer.flush()
    assert store.prediction_logs.count() == 3
    # Room again once the writer has emptied the queue.
    writer.offer_access(POLICY, 1_800_000_010_000_000, 0.001, 200, 10, 20)
    assert (writer.accepted, writer.dropped) == (4, 2)
    assert writer.flush()
    assert store.prediction_logs.count(requests=False) == 1


def test_the_thread_writes_batches_and_everything_queued_before_stop(store: MetadataStore) -> None:
    writer = PredictionLogWriter(store.prediction_logs, batch_size=7, interval=0.05)
    writer.start()
    try:
        for index in range(50):
            writer.offer_request(
                POLICY, 1_800_000_000_000_000 + index, b"[1]", b'{"predictions": [0]}'
            )
        assert writer.flush(timeout=60)
        assert store.prediction_logs.count() == 50
        for index in range(20):
            writer.offer_access(POLICY, 1_800_000_100_000_000 + index, 0.001, 200, 3, 20)
    finally:
        writer.stop(timeout=60)
    assert store.prediction_logs.count(requests=False) == 20
    assert writer.written == 70 and writer.failed == 0
    rows, _ = store.prediction_logs.read_requests(LogQuery(project="p", model="m", limit=1))
    assert rows[0]["raw_prediction"] == '{"predictions": [0]}'


def test_bytes_that_are_not_utf8_are_kept_readable(store: MetadataStore) -> None:
    writer = PredictionLogWriter(store.prediction_logs)
    writer.offer_request(POLICY, 1_800_000_000_000_000, b'{"instances": ["\xff"]}', b"\xfe")
    writer.flush()
    (row,), _ = store.prediction_logs.read_requests(LogQuery(project="p", model="m"))
    assert row["raw_data"] == '{"instances": ["\ufffd"]}' and row["raw_prediction"] == "\ufffd"


class BrokenRows:
    """A database that refuses every write (disk full, say)."""

    def add(self, requests: Sequence[dict[str, Any]], accesses: Sequence[dict[str, Any]]) -> None:
        raise OSError("disk full")

    def trim(self, *, max_rows: int, max_total_rows: int, older_than: int) -> int:
        raise OSError("disk full")


def test_a_failing_database_loses_records_but_not_the_writer() -> None:
    writer = PredictionLogWriter(BrokenRows(), interval=0.05, trim_interval=0.05)
    writer.start()
    try:
        writer.offer_request(POLICY, 1, b"[]", b"{}")
        assert writer.flush(timeout=60)
        writer.offer_request(POLICY, 2, b"[]", b"{}")
        assert writer.flush(timeout=60)
    finally:
        writer.stop(timeout=60)
    assert (writer.failed, writer.written) == (2, 0)


def test_retention_bound_is_applied_by_trim(store: MetadataStore) -> None:
    writer = PredictionLogWriter(store.prediction_logs, max_rows=5, retention_seconds=1e9)
    import time

    now = time.time_ns() // 1000
    for index in range(12):
        writer.offer_request(POLICY, now - 100_000_000 + index, b"[]", b"{}")
    writer.flush()
    assert writer.trim() == 7
    assert store.prediction_logs.count() == 5


def test_bodies_past_the_byte_bound_are_dropped_too(store: MetadataStore) -> None:
    writer = PredictionLogWriter(store.prediction_logs, queue_bytes=1000)
    body = b"x" * 400
    for index in range(3):
        writer.offer_request(POLICY, 1_800_000_000_000_000 + index, body, b"{}")
    assert (writer.accepted, writer.dropped) == (2, 1)
    writer.flush()
    # Written bodies leave the budget: there is room for two more.
    for index in range(3):
        writer.offer_request(POLICY, 1_800_000_000_000_010 + index, body, b"{}")
    assert (writer.accepted, writer.dropped) == (4, 2)


def test_bodies_past_the_row_bound_are_cut_and_marked(store: MetadataStore) -> None:
    writer = PredictionLogWriter(store.prediction_logs, max_body_bytes=10)
    writer.offer_request(POLICY, 1_800_000_000_000_000, b"0123456789", b"short")
    writer.offer_request(POLICY, 1_800_000_000_000_001, b"0123456789abc", b"{}")
    writer.offer_request(POLICY, 1_800_000_000_000_002, b"[]", b"x" * 11)
    writer.flush()
    rows, _ = store.prediction_logs.read_requests(
        LogQuery(project="p", model="m", newest_first=False)
    )
    assert [(r["raw_data"], r["raw_prediction"], r["truncated"]) for r in rows] == [
        ("0123456789", "short", False),
        ("0123456789", "{}", True),
        ("[]", "x" * 10, True),
    ]


def test_the_default_body_bound_is_documented_and_applied(store: MetadataStore) -> None:
    writer = PredictionLogWriter(store.prediction_logs)
    body = b"y" * (request_logs.MAX_LOGGED_BODY_BYTES + 1)
    writer.offer_request(POLICY, 1_800_000_000_000_000, body, b"{}")
    writer.flush()
    (row,), _ = store.prediction_logs.read_requests(LogQuery(project="p", model="m"))
    assert len(row["raw_data"]) == request_logs.MAX_LOGGED_BODY_BYTES and row["truncated"]
    docs = (Path(__file__).parents[2] / "docs" / "serving.md").read_text()
    assert f"{request_logs.MAX_LOGGED_BODY_BYTES // 1024} KiB" in docs


def groundtruth_error(store: MetadataStore, body: Any) -> ApiError:
    service = RequestLogService(
        store.prediction_logs,
        PredictionLogWriter(store.prediction_logs),
        None,  # type: ignore[arg-type]  # setGroundtruth reads neither models nor versions
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
    )
    with pytest.raises(ApiError) as raised:
        service.set_groundtruth("p", "m", body)
    return raised.value


@pytest.mark.parametrize(
    "request_id",
    ["²", "9" * 30, "١٢", str(2**63), 2**63, 10**30, -1, "-1", " 1", "1.0", "", True, 1.0, None],
)
def test_a_request_id_no_row_can_have_is_invalid_argument(
    store: MetadataStore, request_id: Any
) -> None:
    """Digits int() refuses ("²"), and numbers past BIGINT, are the client's error: before,
    they were a ValueError or the database's OverflowError, a 500."""
    error = groundtruth_error(store, {"requestId": request_id, "groundtruth": "x"})
    assert error.code is Code.INVALID_ARGUMENT
    assert error.field_violations[0].field == "request_id"


def test_ground_truth_can_be_limited_to_one_version(store: MetadataStore) -> None:
    writer = PredictionLogWriter(store.prediction_logs)
    writer.offer_request(POLICY, 1_800_000_000_000_000, b"[]", b"{}")
    writer.flush()
    (row,), _ = store.prediction_logs.read_requests(LogQuery(project="p", model="m"))
    request_id = str(row["seq"])
    error = groundtruth_error(store, {"requestId": request_id, "groundtruth": "x", "version": "v2"})
    assert error.code is Code.NOT_FOUND and "versions/v2" in error.message
    bad = groundtruth_error(store, {"requestId": request_id, "groundtruth": "x", "version": 3})
    assert bad.field_violations[0].field == "version"
    # The largest id a row can have is a valid question: NOT_FOUND, not an overflow.
    error = groundtruth_error(store, {"requestId": str(2**63 - 1), "groundtruth": "x"})
    assert error.code is Code.NOT_FOUND


def test_console_reads_stop_at_the_byte_bound_without_newlines(tmp_path: Path) -> None:
    """A node printing without newlines: the read keeps the last MAX_CONSOLE_BYTES, not
    the whole log."""
    log = tmp_path / "node.log"
    bound = request_logs.MAX_CONSOLE_BYTES
    with log.open("wb") as handle:
        handle.write(b"early\n")
        handle.write(b"a" * (bound + 3 * 2**20))
        handle.write(b"z")
    (line,) = _tail_lines(log, 100)
    assert len(line) == bound and line.endswith("az")


def test_console_reads_return_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(100_000)))
    assert _tail_lines(log, 3) == ["line 99997", "line 99998", "line 99999"]
    assert _tail_lines(log, 5000)[0] == "line 95000"
    assert _tail_lines(tmp_path / "missing.log", 3) == []
    partial = tmp_path / "partial.log"
    partial.write_bytes(b"one\ntwo\nthr")
    assert _tail_lines(partial, 2) == ["two", "thr"]
    assert _tail_lines(partial, 10, max_bytes=6) == ["wo", "thr"]
