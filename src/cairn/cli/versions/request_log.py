"""`cairn versions request-log read|export|set-groundtruth`: a version's sampled requests.

A version patched with `requestLoggingConfig` (`cairn versions update V --model M --config
logging.yaml`) keeps a sample of its requests and responses, with the columns of AI
Platform's BigQuery request-log table; these commands read them back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from cairn.cli.options import (
    CairnCommand,
    CairnGroup,
    Session,
    common_options,
    order_option,
)
from cairn.cli.output import Column, field

# Parquet rows buffered before a row group is written: memory stays flat on long exports.
EXPORT_ROW_GROUP = 5000


@click.group("request-log", cls=CairnGroup)
def request_log() -> None:
    """Read and export a version's sampled requests and responses.

    \b
    Turn sampling on (logging.yaml):
      requestLoggingConfig:
        samplingPercentage: 0.1          # a fraction: one request in ten
        bigqueryTableName: myproj.monitoring.census_requests
    \b
      cairn versions update v1 --model census --config logging.yaml
      cairn versions request-log read v1 --model census --limit 20
      cairn versions request-log export v1 --model census --parquet requests.parquet
    """


def _time_options(command: Any) -> Any:
    command = click.option(
        "--until", help="Only rows logged before this RFC 3339 time (e.g. 2026-11-30T15:00:00Z)."
    )(command)
    command = click.option(
        "--since",
        help="Only rows logged at or after this RFC 3339 time (e.g. 2026-11-30T14:00:00Z).",
    )(command)
    command = click.option(
        "--table", help="Only rows of this bigqueryTableName (project.dataset.table)."
    )(command)
    command = click.option("--model", required=True, help="Model the version belongs to.")(command)
    return command


def _entries(
    session: Session, model: str, version: str, table: str | None, since: str | None,
    until: str | None, *, newest_first: bool, limit: int | None,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    return session.client.prediction_log_entries(
        "requestLogs",
        model,
        version=None if version == "-" else version,
        table=table,
        since=since,
        until=until,
        newest_first=newest_first,
        limit=limit,
    )


@request_log.command(cls=CairnCommand)
@click.argument("version")
@_time_options
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@order_option
@common_options
def read(
    version: str,
    model: str,
    table: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    order: str,
    session: Session,
) -> None:
    """Print version VERSION's logged requests and responses, newest first.

    VERSION "-" reads every version of the model. The columns are those of AI Platform's
    request-log table: model, model_version, time, raw_data, raw_prediction, groundtruth
    (plus requestId, to attach ground truth with set-groundtruth). Use --format json for
    whole rows.

    \b
    Examples:
      cairn versions request-log read v1 --model census
      cairn versions request-log read - --model census --since 2026-11-30T00:00:00Z
    """
    entries = _entries(
        session, model, version, table, since, until, newest_first=order == "desc", limit=limit
    )
    columns = [
        Column("REQUEST_ID", field("requestId")),
        Column("TIME", field("time")),
        Column("VERSION", field("model_version")),
        Column("RAW_DATA", lambda e: _short(e.get("raw_data"))),
        Column("RAW_PREDICTION", lambda e: _short(e.get("raw_prediction"))),
        Column("GROUNDTRUTH", lambda e: _short(e.get("groundtruth"))),
    ]
    session.printer.resources(entries, columns)


@request_log.command(cls=CairnCommand)
@click.argument("version")
@_time_options
@click.option(
    "--parquet",
    "parquet_path",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="File to write (replaced if it exists).",
)
@common_options
def export(
    version: str,
    model: str,
    table: str | None,
    since: str | None,
    until: str | None,
    parquet_path: str,
    session: Session,
) -> None:
    """Write version VERSION's logged requests to a Parquet file, oldest first.

    Columns: request_id, table, model, model_version, time (UTC timestamp), raw_data,
    raw_prediction, groundtruth: the BigQuery request-log table's, so queries written for
    it (DuckDB, pandas, BigQuery itself after an upload) keep working; and truncated, true
    where a body was longer than the 16 KiB kept. VERSION "-" exports every version of the
    model.

    \b
    Example:
      cairn versions request-log export v1 --model census --parquet census.parquet
      duckdb -c "select count(*) from 'census.parquet'"
    """
    entries = _entries(session, model, version, table, since, until, newest_first=False, limit=None)
    written = write_parquet(entries, parquet_path)
    session.printer.status(f"Wrote {written} rows to [{parquet_path}].")


@request_log.command("set-groundtruth", cls=CairnCommand)
@click.argument("version")
@click.option("--model", required=True, help="Model the version belongs to.")
@click.option("--request-id", required=True, help="The logged request's REQUEST_ID (from read).")
@click.option(
    "--groundtruth",
    required=True,
    help="What the answer should have been, as text (usually JSON, e.g. '{\"label\": 1}').",
)
@common_options
def set_groundtruth(
    version: str, model: str, request_id: str, groundtruth: str, session: Session
) -> None:
    """Attach ground truth to one logged request of version VERSION, to compare with its
    raw_prediction.

    The request must have gone to VERSION (NOT_FOUND otherwise, so a REQUEST_ID copied from
    another version's log is caught); VERSION "-" accepts a request of any version.

    \b
    Example:
      cairn versions request-log set-groundtruth v1 --model census \\
          --request-id 42 --groundtruth '{"label": 1}'
    """
    of_version = None if version == "-" else version
    session.client.set_request_groundtruth(model, request_id, groundtruth, of_version)
    session.printer.status(
        f"Set the ground truth of request [{request_id}] of [{model}]"
        + (f" version [{of_version}]." if of_version else ".")
    )


def write_parquet(entries: Iterator[dict[str, Any]], path: str) -> int:
    """Stream request-log rows into a Parquet file; how many rows were written."""
    from datetime import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("request_id", pa.int64()),
            ("table", pa.string()),
            ("model", pa.string()),
            ("model_version", pa.string()),
            ("time", pa.timestamp("us", tz="UTC")),
            ("raw_data", pa.string()),
            ("raw_prediction", pa.string()),
            ("groundtruth", pa.string()),
            ("truncated", pa.bool_()),
        ]
    )
    written = 0
    with pq.ParquetWriter(path, schema) as writer:
        buffered: list[dict[str, Any]] = []

        def flush() -> None:
            if buffered:
                writer.write_table(pa.Table.from_pylist(buffered, schema=schema))
                buffered.clear()

        for entry in entries:
            buffered.append(
                {
                    "request_id": int(entry["requestId"]),
                    "table": entry.get("table"),
                    "model": entry.get("model"),
                    "model_version": entry.get("model_version"),
                    "time": datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00")),
                    "raw_data": entry.get("raw_data"),
                    "raw_prediction": entry.get("raw_prediction"),
                    "groundtruth": entry.get("groundtruth"),
                    "truncated": bool(entry.get("truncated")),
                }
            )
            written += 1
            if len(buffered) >= EXPORT_ROW_GROUP:
                flush()
        flush()
    return written


def _short(text: Any, width: int = 60) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= width else value[: width - 1] + "…"
