"""Online-prediction logging: sampled requests and responses, access logs, node console logs.

What AI Platform users configured, and where Cairn keeps it:

* a version's `requestLoggingConfig` (`samplingPercentage`, a fraction 0..1, and
  `bigqueryTableName`, `project.dataset.table`) samples requests and their responses into
  rows with the BigQuery table's columns (model, model_version, time, raw_data,
  raw_prediction, groundtruth), kept in the metadata store under the table's name;
* a model's `onlinePredictionLogging` writes an access-log row per request (time, latency,
  status, request and response sizes);
* a model's `onlinePredictionConsoleLogging` makes its nodes' stdout/stderr readable.

The predict path never waits for a database: it appends a record to a bounded in-memory
queue (`PredictionLogWriter.offer`; a full queue drops and counts), and one writer thread
inserts the records in batches and trims the tables to the configured bound.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cairn.domain.errors import ApiError, Code, failed_precondition, invalid_field
from cairn.domain.models import RequestLoggingConfig
from cairn.domain.names import VersionName, check_id, check_project
from cairn.domain.wire import format_timestamp
from cairn.services.records import page_size_of
from cairn.store.prediction_logs import LogQuery, fits_bigint

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# BigQuery's `project.dataset.table`; Cairn project ids may hold underscores, and a
# domain-scoped project (`example.com:proj`) dots before its colon.
_TABLE_NAME = re.compile(
    r"(?:[A-Za-z0-9.\-]+:)?[A-Za-z0-9][A-Za-z0-9_\-]{0,127}"  # [domain:]project
    r"\.[A-Za-z0-9_]{1,1024}"  # .dataset
    r"\.[\w\-]{1,1024}"  # .table
)
# Lines of each node's console log one read returns at most.
MAX_CONSOLE_LINES = 5000
# Bytes read from the end of each node's console log at most, however long its lines: a
# node printing without newlines must not make a read load its whole log into memory.
MAX_CONSOLE_BYTES = 16 * 2**20
# A logged request or response body is kept up to this many bytes; the rest is cut and the
# row marked `truncated`. With the row bounds this bounds the request log's size on disk.
MAX_LOGGED_BODY_BYTES = 16 * 1024
# How long a read waits for records still queued, so it sees every request answered before it.
READ_FLUSH_SECONDS = 10.0


def check_request_logging_config(
    config: RequestLoggingConfig | None, field_root: str = "version.request_logging_config"
) -> None:
    """INVALID_ARGUMENT with a field violation unless `config` is one AI Platform accepts."""
    if config is None:
        return
    fraction = config.sampling_percentage
    if fraction is not None and not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0):
        raise invalid_field(
            f"{field_root}.sampling_percentage",
            f"samplingPercentage is a fraction from 0 to 1 (0.1 logs one request in ten), "
            f"not {fraction}.",
        )
    name = config.bigquery_table_name
    if (fraction or 0.0) > 0.0 and not name:
        raise invalid_field(
            f"{field_root}.bigquery_table_name",
            "bigqueryTableName is required when samplingPercentage is above 0: name the "
            "table the sampled requests go to, as project.dataset.table.",
        )
    if name:
        check_table_name(name, f"{field_root}.bigquery_table_name")


def check_table_name(name: str, field_path: str) -> None:
    if not _TABLE_NAME.fullmatch(name):
        raise invalid_field(
            field_path,
            f"'{name[:120]}' is not a table name of the form project.dataset.table "
            "(letters, digits and underscores; the project may also hold - and a domain:).",
        )


@dataclass(frozen=True, slots=True)
class LoggingPolicy:
    """What the predict path logs for one version; resolved with the route, kept in memory."""

    project: str
    model: str
    version: str
    sampling: float = 0.0  # fraction of requests whose request and response are kept
    table_name: str | None = None
    access_log: bool = False

    @property
    def active(self) -> bool:
        return self.access_log or (self.sampling > 0.0 and self.table_name is not None)


def logging_policy(
    project: str, model: str, version: str, model_doc: dict[str, Any], version_doc: dict[str, Any]
) -> LoggingPolicy | None:
    """The policy of a version from its stored documents; None when nothing is logged."""
    config = version_doc.get("requestLoggingConfig") or {}
    try:
        sampling = float(config.get("samplingPercentage") or 0.0)
    except (TypeError, ValueError):
        sampling = 0.0
    table_name = config.get("bigqueryTableName") or None
    policy = LoggingPolicy(
        project,
        model,
        version,
        # Validation requires a table for sampling; a document without one samples nothing.
        sampling=sampling if table_name else 0.0,
        table_name=table_name,
        access_log=bool(model_doc.get("onlinePredictionLogging")),
    )
    return policy if policy.active else None


class LogRows(Protocol):
    def add(
        self, requests: Sequence[dict[str, Any]], accesses: Sequence[dict[str, Any]]
    ) -> None: ...
    def trim(self, *, max_rows: int, max_total_rows: int, older_than: int) -> int: ...


class PredictionLogWriter:
    """A bounded queue the predict path appends to, and the thread that empties it.

    `offer_*` run on the event loop and never block: past `queue_size` waiting records, or
    `queue_bytes` of waiting request and response bodies, a record is dropped and counted
    in `dropped`. The thread writes batches of up to
    `batch_size` rows every `interval` seconds, and every `trim_interval` seconds deletes
    rows past the retention bound: older than `retention_seconds`, past the newest
    `max_rows` of a project's table name or a model's access log, past the newest
    `max_total_rows` of either table. Bodies are kept up to `max_body_bytes` each.
    """

    def __init__(
        self,
        rows: LogRows,
        *,
        queue_size: int = 10_000,
        queue_bytes: int = 256 * 2**20,
        max_rows: int = 1_000_000,
        max_total_rows: int = 2_000_000,
        max_body_bytes: int = MAX_LOGGED_BODY_BYTES,
        retention_seconds: float = 30 * 86400.0,
        batch_size: int = 1000,
        interval: float = 0.2,
        trim_interval: float = 60.0,
    ) -> None:
        if (
            min(queue_size, queue_bytes, max_rows, max_total_rows, max_body_bytes) < 1
            or retention_seconds <= 0
        ):
            raise ValueError("queue sizes, row and body bounds and retention must be positive")
        self._rows = rows
        self._queue: deque[tuple[Any, ...]] = deque()
        self._limit = queue_size
        self._byte_limit = queue_bytes
        # Bodies queued = in - out; each counter has one writer thread, so none loses an add.
        self._bytes_in = 0
        self._bytes_out = 0
        self.max_rows = max_rows
        self.max_total_rows = max_total_rows
        self.max_body_bytes = max_body_bytes
        self.retention_seconds = retention_seconds
        self._batch_size = batch_size
        self._interval = interval
        self._trim_interval = trim_interval
        # Written by the event loop only (accepted, dropped) or the writer only (the rest).
        self.accepted = 0
        self.dropped = 0
        self.written = 0
        self.failed = 0
        self._handled = 0
        self._reported_drops = 0
        self._next_drop_warning = 0.0
        self._done = threading.Condition()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- the predict path --------------------------------------------------------------

    def offer_request(self, policy: LoggingPolicy, at: int, body: bytes, response: bytes) -> None:
        """Queue a sampled exchange; `at` is in microseconds since the epoch."""
        size = len(body) + len(response)
        if (
            len(self._queue) >= self._limit
            or self._bytes_in - self._bytes_out + size > self._byte_limit
        ):
            self.dropped += 1
            return
        self._bytes_in += size
        self._queue.append((policy, at, body, response))
        self.accepted += 1

    def offer_access(
        self,
        policy: LoggingPolicy,
        at: int,
        latency: float,
        status: int,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        if len(self._queue) >= self._limit:
            self.dropped += 1
            return
        self._queue.append((policy, at, latency, status, request_bytes, response_bytes))
        self.accepted += 1

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="prediction-log-writer", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end the thread."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        thread.join(timeout)
        self._thread = None

    def flush(self, timeout: float = READ_FLUSH_SECONDS) -> bool:
        """Wait until every record offered so far is written (or failed); False on timeout."""
        target = self.accepted
        if self._thread is None:
            self._drain()
            return True
        self._wake.set()
        with self._done:
            return self._done.wait_for(lambda: self._handled >= target, timeout)

    def trim(self) -> int:
        """Apply the retention bound now; how many rows were deleted."""
        cutoff = time.time_ns() // 1000 - int(self.retention_seconds * 1_000_000)
        return self._rows.trim(
            max_rows=self.max_rows, max_total_rows=self.max_total_rows, older_than=cutoff
        )

    # -- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        next_trim = time.monotonic() + min(self._trim_interval, 5.0)
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()
            if self.dropped != self._reported_drops and time.monotonic() >= self._next_drop_warning:
                # At most one warning every 10 s however fast records are dropped.
                log.warning(
                    "prediction logs: %d records dropped since start, the queue (%d records, "
                    "%d bytes) was full: raise CAIRN_PREDICTION_LOG_QUEUE_SIZE / _BYTES",
                    self.dropped,
                    self._limit,
                    self._byte_limit,
                )
                self._reported_drops = self.dropped
                self._next_drop_warning = time.monotonic() + 10.0
            if time.monotonic() >= next_trim:
                next_trim = time.monotonic() + self._trim_interval
                try:
                    self.trim()
                except Exception:
                    log.exception("prediction logs: trimming to the retention bound failed")
            if self._stopping and not self._queue:
                return

    def _drain(self) -> None:
        while self._queue:
            batch: list[tuple[Any, ...]] = []
            while self._queue and len(batch) < self._batch_size:
                batch.append(self._queue.popleft())
            self._write(batch)

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        requests: list[dict[str, Any]] = []
        accesses: list[dict[str, Any]] = []
        for record in batch:
            policy: LoggingPolicy = record[0]
            base = {
                "project": policy.project,
                "model": policy.model,
                "model_version": policy.version,
                "time": record[1],
            }
            if len(record) == 4:
                body, response = record[2], record[3]
                self._bytes_out += len(body) + len(response)
                limit = self.max_body_bytes
                requests.append(
                    {
                        **base,
                        "table_name": policy.table_name or "",
                        "raw_data": _text(body[:limit]),
                        "raw_prediction": _text(response[:limit]),
                        "groundtruth": None,
                        "truncated": len(body) > limit or len(response) > limit,
                    }
                )
            else:
                accesses.append(
                    {
                        **base,
                        "latency_seconds": record[2],
                        "status": record[3],
                        "request_bytes": record[4],
                        "response_bytes": record[5],
                    }
                )
        try:
            self._rows.add(requests, accesses)
            self.written += len(batch)
        except Exception:
            self.failed += len(batch)
            log.exception("prediction logs: writing %d records failed; they are lost", len(batch))
        with self._done:
            self._handled += len(batch)
            self._done.notify_all()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# ----- reading ---------------------------------------------------------------------------


class LogReader(Protocol):
    def read_requests(self, query: LogQuery) -> tuple[list[dict[str, Any]], str | None]: ...
    def read_accesses(self, query: LogQuery) -> tuple[list[dict[str, Any]], str | None]: ...
    def set_groundtruth(
        self,
        project: str,
        model: str,
        request_id: int,
        groundtruth: str,
        version: str | None = None,
    ) -> bool: ...


class NodeLogs(Protocol):
    def node_log_paths(self, key: str) -> list[Path]: ...


class ModelLookup(Protocol):
    def require(self, project: str, model: str) -> dict[str, Any]: ...


class VersionLookup(Protocol):
    def get(self, project: str, model: str, version: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LogRead:
    """The parameters of a log read, as the API route receives them."""

    version: str | None = None
    table: str | None = None
    since: str | None = None
    until: str | None = None
    order: str | None = None  # "desc" (newest first, the default) or "asc"
    page_size: int | None = None
    page_token: str | None = None


class RequestLogService:
    """Reads the logs back: sampled requests, access logs, nodes' console output."""

    def __init__(
        self,
        rows: LogReader,
        writer: PredictionLogWriter,
        models: ModelLookup,
        versions: VersionLookup,
        serving: NodeLogs,
    ) -> None:
        self._rows = rows
        self.writer = writer
        self._models = models
        self._versions = versions
        self._serving = serving

    def read_requests(self, project: str, model: str, read: LogRead) -> dict[str, Any]:
        """A page of sampled requests of `model` (logs outlive their version and model)."""
        if read.table:
            check_table_name(read.table, "table")
        query = replace(self._query(project, model, read), table_name=read.table or None)
        rows, cursor = self._rows.read_requests(query)
        return self._page([_request_entry(row) for row in rows], cursor)

    def read_accesses(self, project: str, model: str, read: LogRead) -> dict[str, Any]:
        """A page of access-log rows of `model`."""
        if read.table is not None:
            raise invalid_field("table", "The access log has no table; leave `table` out.")
        rows, cursor = self._rows.read_accesses(self._query(project, model, read))
        return self._page([_access_entry(row) for row in rows], cursor)

    def request_log_rows(
        self, project: str, model: str, read: LogRead
    ) -> tuple[list[tuple[int, int, dict[str, Any]]], str | None]:
        """As read_requests, each entry with its row's (time, seq), the store's own cursor:
        a reader can resume at a row however late other rows were written."""
        query = replace(self._query(project, model, read), table_name=read.table or None)
        rows, cursor = self._rows.read_requests(query)
        return [(row["time"], row["seq"], _request_entry(row)) for row in rows], cursor

    def access_log_rows(
        self, project: str, model: str, read: LogRead
    ) -> tuple[list[tuple[int, int, dict[str, Any]]], str | None]:
        """As read_accesses, each entry with its row's (time, seq)."""
        rows, cursor = self._rows.read_accesses(self._query(project, model, read))
        return [(row["time"], row["seq"], _access_entry(row)) for row in rows], cursor

    def set_groundtruth(self, project: str, model: str, body: Any) -> dict[str, Any]:
        """Attach the ground truth of one logged request (by its `requestId`; with
        `version`, only if the request went to that version)."""
        check_project(project)
        check_id(model, "model")
        if not isinstance(body, dict):
            raise invalid_field("body", 'Send {"requestId": "…", "groundtruth": "…"}.')
        request_id = _request_id(body.get("requestId"))
        groundtruth = body.get("groundtruth")
        version = body.get("version")
        if version is not None:
            if not isinstance(version, str):
                raise invalid_field("version", "version is a version id, e.g. v1.")
            check_id(version, "version")
        if not isinstance(groundtruth, str):
            raise invalid_field(
                "groundtruth",
                "groundtruth is a string (for structured truth, a JSON text, as in BigQuery).",
            )
        unknown = set(body) - {"requestId", "groundtruth", "version"}
        if unknown:
            raise invalid_field(sorted(unknown)[0], "Unknown field.")
        self.writer.flush()
        if not self._rows.set_groundtruth(project, model, request_id, groundtruth, version):
            of = f"projects/{project}/models/{model}" + (f"/versions/{version}" if version else "")
            kind = "version" if version else "model"
            raise ApiError(Code.NOT_FOUND, f"No logged request {request_id} of {kind} {of}.")
        return {}

    def read_console(
        self, project: str, model: str, version: str, lines: int | None
    ) -> dict[str, Any]:
        """The last `lines` lines of each of the version's node logs."""
        model_doc = self._models.require(project, model)
        self._versions.get(project, model, version)
        if not model_doc.get("onlinePredictionConsoleLogging"):
            raise failed_precondition(
                f"Model projects/{project}/models/{model} was created without "
                "onlinePredictionConsoleLogging, so its nodes' output is not kept for "
                "reading; create a model with it (`cairn models create --enable-console-"
                "logging`) to read the console logs of its versions."
            )
        count = 100 if lines is None else lines
        if not 1 <= count <= MAX_CONSOLE_LINES:
            raise invalid_field("lines", f"Ask for 1 to {MAX_CONSOLE_LINES} lines.")
        entries: list[dict[str, Any]] = []
        key = str(VersionName(project, model, version))
        for index, path in enumerate(self._serving.node_log_paths(key)):
            for text in _tail_lines(Path(path), count):
                entries.append({"node": index, "text": text})
        return {"entries": entries} if entries else {}

    # -- helpers -----------------------------------------------------------------------

    def _query(self, project: str, model: str, read: LogRead) -> LogQuery:
        check_project(project)
        check_id(model, "model")
        if read.version is not None:
            check_id(read.version, "version")
        if read.order not in (None, "", "asc", "desc"):
            raise invalid_field("order", "Order is asc (oldest first) or desc (newest first).")
        since, until = _instant(read.since, "since"), _instant(read.until, "until")
        # A read sees every request answered before it: wait for what is still queued.
        self.writer.flush()
        return LogQuery(
            project=project,
            model=model,
            version=read.version or None,
            since=since,
            until=until,
            newest_first=read.order != "asc",
            after=read.page_token or None,
            limit=page_size_of(read.page_size),
        )

    def _page(self, entries: list[dict[str, Any]], cursor: str | None) -> dict[str, Any]:
        page: dict[str, Any] = {}
        if entries:
            page["entries"] = entries
        if cursor:
            page["nextPageToken"] = cursor
        if self.writer.dropped:
            # Server-wide since start: tells a reader the sample may have gaps.
            page["droppedRecords"] = str(self.writer.dropped)
        return page


def _request_id(value: Any) -> int:
    """A requestId as read back (a decimal string, or a JSON integer), checked to be one a
    row can have: INVALID_ARGUMENT otherwise, never an error of the database."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 0 and fits_bigint(value):
            return value
    # isdigit() alone admits "²" and other digits int() refuses: ASCII digits only.
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
        if fits_bigint(number):
            return number
    raise invalid_field(
        "request_id", 'Give the requestId of a logged request (as read back), e.g. "42".'
    )


def _instant(text: str | None, field_path: str) -> int | None:
    """An RFC 3339 time as microseconds since the epoch (exactly: no float rounding)."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_field(
            field_path, f"'{text[:60]}' is not an RFC 3339 time, e.g. 2026-11-30T14:00:00Z."
        ) from None
    if parsed.tzinfo is None:
        raise invalid_field(field_path, f"'{text[:60]}' has no time zone; end it with Z.")
    return (parsed - _EPOCH) // timedelta(microseconds=1)


def format_time(microseconds: int) -> str:
    return format_timestamp(_EPOCH + timedelta(microseconds=microseconds))


def _request_entry(row: dict[str, Any]) -> dict[str, Any]:
    """A request-log row with the BigQuery table's column names, plus its id and table."""
    return {
        "requestId": str(row["seq"]),
        "table": row["table_name"],
        "model": row["model"],
        "model_version": row["model_version"],
        "time": format_time(row["time"]),
        "raw_data": row["raw_data"],
        "raw_prediction": row["raw_prediction"],
        "groundtruth": row["groundtruth"],
        **({"truncated": True} if row["truncated"] else {}),
    }


def _access_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": row["model"],
        "model_version": row["model_version"],
        "time": format_time(row["time"]),
        "latency_seconds": round(row["latency_seconds"], 6),
        "status": row["status"],
        "request_bytes": row["request_bytes"],
        "response_bytes": row["response_bytes"],
    }


def _tail_lines(path: Path, count: int, max_bytes: int = MAX_CONSOLE_BYTES) -> list[str]:
    """The last `count` lines of a log file, read from its end in blocks (logs can be
    large), and at most `max_bytes` of it (a line can be too)."""
    block = 64 * 1024
    chunks: list[bytes] = []
    newlines = 0
    try:
        with path.open("rb") as handle:
            position = handle.seek(0, 2)
            start = max(0, position - max_bytes)
            while position > start and newlines <= count:
                step = min(block, position - start)
                position -= step
                handle.seek(position)
                chunk = handle.read(step)
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
    except FileNotFoundError:
        return []
    chunks.reverse()
    lines = b"".join(chunks).decode("utf-8", "replace").splitlines()
    return lines[-count:]
