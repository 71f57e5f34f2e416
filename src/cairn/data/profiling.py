"""Profile a table: per-column statistics and drift in DuckDB over all rows, charts on a sample.

Each finding (a missing share, outliers, drift, a difference between slices) carries the SQL
that reproduces it, written against the table name `cairn data query` gives the source, so
the report can show the command next to the finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from cairn.data.cleaning._columns import is_numeric
from cairn.data.cleaning.outliers import quantile_function
from cairn.data.drift import (
    TABLE,
    DriftReport,
    DriftSettings,
    analyse,
    auto_slice_columns,
    render_query,
)
from cairn.data.query import query_command, sql_name
from cairn.data.sources import columns_of, fetch_one, quote_identifier
from cairn.data.workspace import Workspace
from cairn.domain.errors import invalid_field


@dataclass
class ColumnProfile:
    name: str
    type: str
    count: int
    missing_share: float
    distinct: int
    numeric: bool
    minimum: Any = None
    maximum: Any = None
    mean: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    outliers: int = 0
    top_values: list[tuple[str, int]] = field(default_factory=list)
    missing_query: str = ""  # SQL (with drift.TABLE for the table) returning the rows meant
    outlier_query: str = ""
    top_query: str = ""


@dataclass(frozen=True)
class QueryLink:
    """How `cairn data query` names the profiled data: its SOURCE arguments and table."""

    sources: tuple[str, ...]
    table: str

    def command(self, sql: str) -> str:
        return query_command(self.sources, render_query(sql, sql_name(self.table)))


@dataclass
class Profile:
    rows: int
    columns: list[ColumnProfile]
    sample: pd.DataFrame
    correlations: pd.DataFrame
    time_column: str | None = None
    place_column: str | None = None
    trends: dict[str, pd.DataFrame] = field(default_factory=dict)
    places: dict[str, pd.DataFrame] = field(default_factory=dict)
    drift: DriftReport | None = None
    link: QueryLink | None = None

    def shown_query(self, sql: str) -> str:
        """The finding's command line, or its SQL over `data` when no command reaches it."""
        return self.link.command(sql) if self.link else render_query(sql, "data")


def _column_profile(ws: Workspace, relation: str, name: str, kind: str) -> ColumnProfile:
    q, source = quote_identifier(name), quote_identifier(relation)
    numeric = is_numeric(kind)
    row = fetch_one(
        ws.con, f"SELECT count(*), count({q}), approx_count_distinct({q}) FROM {source}"
    ) or (0, 0, 0)
    total, present, distinct = int(row[0]), int(row[1]), int(row[2])
    profile = ColumnProfile(
        name, kind, total, (total - present) / total if total else 0.0, distinct, numeric
    )
    written = sql_name(name)
    if present < total:
        profile.missing_query = f"SELECT * FROM {TABLE} WHERE {written} IS NULL"
    if numeric and present:
        stats = fetch_one(
            ws.con,
            f"SELECT min({q}), max({q}), avg({q}), {quantile_function(ws, relation)}({q}, [0.05, 0.25, 0.5, 0.75, 0.95]) FROM {source}",
        ) or (None, None, None, [])
        profile.minimum, profile.maximum, profile.mean = stats[0], stats[1], float(stats[2])
        profile.quantiles = dict(
            zip(("p5", "p25", "p50", "p75", "p95"), map(float, stats[3]), strict=True)
        )
        spread = profile.quantiles["p75"] - profile.quantiles["p25"]
        low, high = profile.quantiles["p25"] - 1.5 * spread, profile.quantiles["p75"] + 1.5 * spread
        outside = f"{written} < {_number(low)} OR {written} > {_number(high)}"
        outlier_query = f"SELECT * FROM {TABLE} WHERE {outside} ORDER BY {written} DESC"
        found = fetch_one(ws.con, f"SELECT count(*) FROM ({render_query(outlier_query, source)})")
        profile.outliers = int(found[0]) if found else 0
        if profile.outliers:
            profile.outlier_query = outlier_query
    elif present:
        bounds = fetch_one(
            ws.con, f"SELECT min({q})::VARCHAR, max({q})::VARCHAR FROM {source}"
        ) or (None, None)
        profile.minimum, profile.maximum = bounds
        top = ws.con.execute(
            f"SELECT CAST({q} AS VARCHAR), count(*) FROM {source} WHERE {q} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
        ).fetchall()
        profile.top_values = [(str(v), int(n)) for v, n in top]
        # Positional GROUP BY/ORDER BY: a data column named `n` must not capture them.
        profile.top_query = (
            f"SELECT {written}, count(*) AS n FROM {TABLE} WHERE {written} IS NOT NULL "
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
        )
    return profile


def _number(value: float) -> str:
    """A readable literal; the profile counts with this same text, so the query and the
    count agree even where it rounds the fence."""
    return f"{value:.10g}" if np.isfinite(value) else f"'{value}'::DOUBLE"


def profile(
    ws: Workspace,
    relation: str,
    time_column: str | None = None,
    place_column: str | None = None,
    sample_rows: int = 100_000,
    max_columns: int = 60,
    slice_columns: list[str] | None = None,
    drift_settings: DriftSettings | None = None,
    link: QueryLink | None = None,
) -> Profile:
    """Statistics of every column of `relation`, trends over time and place, drift over time
    within each slice and differences between slices (see cairn.data.drift).

    `slice_columns` None picks low-cardinality text columns besides `place_column`.
    """
    types = columns_of(ws.con, relation)
    for option, column in (("time_column", time_column), ("place_column", place_column)):
        if column and column not in types:
            raise invalid_field(option, f"no column {column!r}; the data has {', '.join(types)}.")
    for column in slice_columns or []:
        if column not in types:
            raise invalid_field(
                "slice_columns", f"no column {column!r}; the data has {', '.join(types)}."
            )
    names = [c for c in types if not c.startswith("_cairn")][:max_columns]
    columns = [_column_profile(ws, relation, n, types[n]) for n in names]
    sample = ws.con.execute(
        f"SELECT * FROM {quote_identifier(relation)} USING SAMPLE {int(sample_rows)} ROWS (reservoir, 42)"
    ).df()
    numeric = [c.name for c in columns if c.numeric and c.distinct > 1]
    correlations = sample[numeric].astype(float).corr() if len(numeric) > 1 else pd.DataFrame()
    result = Profile(
        ws.count(relation), columns, sample, correlations, time_column, place_column, link=link
    )
    measured = [c for c in numeric if c not in (time_column, place_column)]
    if time_column:
        stamps = pd.to_datetime(sample[time_column], errors="coerce", utc=True)
        span = (stamps.max() - stamps.min()) if stamps.notna().any() else pd.Timedelta(0)
        freq = "D" if span <= pd.Timedelta(days=90) else "MS"
        buckets = (
            stamps.dt.tz_localize(None).dt.to_period("D" if freq == "D" else "M").dt.start_time
        )
        for column in measured:
            result.trends[column] = (
                sample.groupby(buckets)[column].agg(["mean", "count"]).sort_index()
            )
    if place_column:
        places = sample[place_column].astype(str)
        top_places = places.value_counts().index[:6]
        for column in measured:
            result.places[column] = (
                sample.groupby(places)[column].agg(["mean", "count"]).loc[top_places]
            )
    settings = drift_settings or DriftSettings()
    slices = [place_column] if place_column else []
    if slice_columns is None:
        exclude = [c for c in (time_column, place_column) if c]
        slices += auto_slice_columns(ws.con, relation, types, exclude, settings)
    else:
        slices += [c for c in slice_columns if c not in slices]
    if time_column or slices:
        result.drift = analyse(
            ws.con, relation, types, time_column, slices, [c.name for c in columns], settings
        )
        _summarise(ws, relation, result.drift)
    return result


def _summarise(ws: Workspace, relation: str, report: DriftReport, shown: int = 20) -> None:
    """Fill each shown finding's history and window summaries by running its own query."""
    for finding in report.findings[:shown]:
        try:
            cursor = ws.con.execute(render_query(finding.query, quote_identifier(relation)))
            names = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall()
        except duckdb.Error as error:  # the report still shows the finding and its query
            message = str(error).strip().splitlines()
            finding.window_summary = f"(its query failed: {message[0] if message else error})"
            continue
        for row in rows:
            text = ", ".join(f"{n} {_short(v)}" for n, v in zip(names[1:], row[1:], strict=True))
            if row[0] == "window":
                finding.window_summary = text
            else:
                finding.history_summary = text


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and bool(np.isfinite(value))
