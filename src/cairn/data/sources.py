"""Sources: CSV, Parquet, JSON Lines and SQL databases, each exposed to DuckDB under a name.

Files become DuckDB *views*, so nothing is read until a query needs it and DuckDB streams
inputs larger than memory. SQL databases are copied into DuckDB in chunks because DuckDB
cannot reach them without network-installed extensions.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from cairn.domain.errors import invalid_field

FORMATS = ("csv", "parquet", "jsonl", "sql")
_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_SQL_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class SourceSpec:
    """Where one input table comes from; `path` for files, `url` (+ `table` or `query`) for SQL."""

    name: str
    path: str | None = None
    format: str | None = None
    url: str | None = None
    table: str | None = None
    query: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    header: bool | None = None

    def resolved_format(self) -> str:
        """The declared format, else the one the file suffix or the URL implies."""
        if self.format:
            if self.format not in FORMATS:
                raise invalid_field(
                    f"sources.{self.name}.format",
                    f"unknown format {self.format!r}; use one of {', '.join(FORMATS)}.",
                )
            return self.format
        if self.url:
            return "sql"
        if self.path:
            suffix = Path(self.path).suffix.lower()
            if suffix in _SUFFIX_FORMATS:
                return _SUFFIX_FORMATS[suffix]
        raise invalid_field(
            f"sources.{self.name}",
            "cannot tell the format; give `format:` (csv, parquet, jsonl) or a `url:` for SQL.",
        )


@dataclass(frozen=True)
class CsvDialect:
    """What was sniffed from the head of a CSV file."""

    encoding: str
    delimiter: str
    header: bool


def sniff_csv(path: str | Path, sample_bytes: int = 64_000) -> CsvDialect:
    """Guess encoding (UTF-8, UTF-16 by BOM, else Latin-1), delimiter and header from the head."""
    raw = Path(path).read_bytes()[:sample_bytes] if Path(path).is_file() else b""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding, text = "utf-16", raw.decode("utf-16", errors="ignore")
    else:
        try:
            text, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError as error:
            # A multi-byte character cut at the sample's end is still UTF-8.
            if error.start >= len(raw) - 4:
                text, encoding = raw[: error.start].decode("utf-8"), "utf-8"
            else:
                text, encoding = raw.decode("latin-1"), "latin-1"
    lines = text.splitlines()[:50]
    sample = "\n".join(lines)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    try:
        header = csv.Sniffer().has_header(sample) if len(lines) > 1 else True
    except csv.Error:
        header = True
    if not header and lines and _looks_like_names(lines[0].split(delimiter)):
        header = True
    return CsvDialect(encoding=encoding, delimiter=delimiter, header=header)


def _looks_like_names(cells: list[str]) -> bool:
    """A first row of distinct identifiers is a header even when every column is text."""
    names = [c.strip().strip('"') for c in cells]
    pattern = re.compile(r"^[A-Za-z_][\w .()-]*$")
    return len(set(names)) == len(names) and all(pattern.match(n) for n in names)


def quote_identifier(name: str) -> str:
    """A DuckDB identifier, quoted so any column name is safe in SQL."""
    return '"' + name.replace('"', '""') + '"'


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def load_source(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> str:
    """Make `spec` queryable in `con` as a view or table named after it; return that name."""
    kind = spec.resolved_format()
    name = quote_identifier(spec.name)
    if kind == "sql":
        _copy_sql(con, spec)
        return spec.name
    if not spec.path:
        raise invalid_field(f"sources.{spec.name}.path", "a file source needs `path:`.")
    path = spec.path
    if not any(ch in path for ch in "*?[") and not Path(path).exists():
        raise invalid_field(
            f"sources.{spec.name}.path", f"{path} does not exist; check the path in the recipe."
        )
    if kind == "csv":
        dialect = sniff_csv(path)
        options = {
            "encoding": spec.encoding or dialect.encoding,
            "delim": spec.delimiter or dialect.delimiter,
            "header": spec.header if spec.header is not None else dialect.header,
        }
        rendered = ", ".join(
            f"{key} = {str(value).lower() if isinstance(value, bool) else _sql_literal(str(value))}"
            for key, value in options.items()
        )
        scan = f"read_csv({_sql_literal(path)}, {rendered}, nullstr = ['', 'NA', 'NULL'])"
    elif kind == "parquet":
        scan = f"read_parquet({_sql_literal(path)})"
    else:
        scan = f"read_json({_sql_literal(path)}, format = 'newline_delimited')"
    con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {scan}")
    return spec.name


def _copy_sql(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """Copy a SQL table or query into DuckDB chunk by chunk, so memory stays bounded."""
    import pandas as pd
    import sqlalchemy as sa

    if not (spec.table or spec.query):
        raise invalid_field(f"sources.{spec.name}", "a SQL source needs `table:` or `query:`.")
    url = spec.url or ""
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        engine = sa.create_engine(url)
    except Exception as error:  # noqa: BLE001 - SQLAlchemy raises several types for bad URLs
        raise invalid_field(f"sources.{spec.name}.url", f"cannot use {url!r}: {error}") from error
    query = spec.query or f"SELECT * FROM {spec.table}"
    name = quote_identifier(spec.name)
    con.execute(f"DROP TABLE IF EXISTS {name}")
    created = False
    try:
        with engine.connect() as connection:
            chunks: Any = pd.read_sql_query(sa.text(query), connection, chunksize=_SQL_CHUNK_ROWS)
            for chunk in chunks:
                con.register("_cairn_sql_chunk", chunk)
                if not created:
                    con.execute(f"CREATE TABLE {name} AS SELECT * FROM _cairn_sql_chunk")
                    created = True
                else:
                    con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _cairn_sql_chunk")
                con.unregister("_cairn_sql_chunk")
    except sa.exc.SQLAlchemyError as error:
        raise invalid_field(
            f"sources.{spec.name}", f"reading {query!r} failed: {error.__cause__ or error}"
        ) from error
    finally:
        engine.dispose()
    if not created:
        raise invalid_field(f"sources.{spec.name}", f"{query!r} returned no result set.")


def columns_of(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    """Column name -> DuckDB type of a view or table, without reading its rows."""
    rows = con.execute(f"DESCRIBE SELECT * FROM {quote_identifier(relation)}").fetchall()
    return {row[0]: str(row[1]) for row in rows}


def row_count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    result = fetch_one(con, f"SELECT count(*) FROM {quote_identifier(relation)}")
    return int(result[0]) if result else 0


def fetch_one(
    con: duckdb.DuckDBPyConnection, sql: str, params: Any = None
) -> tuple[Any, ...] | None:
    """The first row of `sql`, reading the whole result so the connection is free afterwards."""
    rows = (
        con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    )
    return rows[0] if rows else None
