"""The counting DuckDB does: which columns are measured and how, the time windows, and the
counts per slice, window and bin that every test works on."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np

from cairn.data.drift.model import DriftSettings
from cairn.data.query import sql_name, sql_text
from cairn.data.sources import fetch_one, quote_identifier

PERCENTILES = 100  # numeric values are counted in this many bins of the whole column
REFINE_BELOW_BINS = 10  # a slice whose values fill fewer of those bins gets its own
MAX_REFINED = 200  # at most this many (slice, column) pairs get their own bins
TIME_TRIM = 0.005  # windows are cut between these time quantiles; outside rows go to the ends

_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE")
_TEXT_TYPES = ("VARCHAR", "BOOLEAN", "ENUM")


def base_type(kind: str) -> str:
    return kind.split("(")[0].upper()


def is_numeric_type(kind: str) -> bool:
    base = base_type(kind)
    return base in _NUMERIC_TYPES or base.startswith(("DECIMAL", "UBIGINT", "UINTEGER", "USMALL"))


def is_text_type(kind: str) -> bool:
    return base_type(kind) in _TEXT_TYPES


@dataclass(frozen=True)
class Measure:
    column: str
    measure: str  # values | categories | missing share
    edges: tuple[float, ...] = ()


@dataclass
class TimeAxis:
    """How to read the time column as a number, and the window boundaries in that number."""

    column: str
    kind: str
    expression: str
    boundaries: list[float]
    low: float
    high: float
    note: str = ""  # e.g. how many text values did not read as times

    def literal(self, value: float) -> str:
        """A boundary as a value of the column's own type, for a person's SQL."""
        if is_numeric_type(self.kind):
            return repr(value)
        stamp = datetime.fromtimestamp(value, tz=UTC)
        if "TIME ZONE" in self.kind.upper() or base_type(self.kind) in ("TIMESTAMPTZ", "VARCHAR"):
            return f"TIMESTAMPTZ '{stamp:%Y-%m-%d %H:%M:%S}+00'"
        if base_type(self.kind) == "DATE":
            return f"DATE '{stamp:%Y-%m-%d}'"
        return f"TIMESTAMP '{stamp:%Y-%m-%d %H:%M:%S}'"

    def column_sql(self) -> str:
        name = sql_name(self.column)
        if is_numeric_type(self.kind) or base_type(self.kind).startswith(("TIMESTAMP", "DATE")):
            return name
        return f"try_cast({name} AS TIMESTAMPTZ)"

    def render(self, value: float) -> str:
        if is_numeric_type(self.kind):
            return f"{value:.10g}"
        stamp = datetime.fromtimestamp(value, tz=UTC)
        if base_type(self.kind) == "DATE" or value % 86400 == 0:
            return stamp.strftime("%Y-%m-%d")
        return stamp.strftime("%Y-%m-%d %H:%M:%S")

    def window_bounds(self, window: int) -> tuple[float | None, float | None]:
        edges = [None, *self.boundaries, None]
        return edges[window], edges[window + 1]

    def label(self, start: int, stop: int) -> str:
        """Windows start..stop-1 as a span of time."""
        low = self.low if start == 0 else self.boundaries[start - 1]
        high = self.high if stop > len(self.boundaries) else self.boundaries[stop - 1]
        return f"{self.render(low)} .. {self.render(high)}"


def time_expression(column: str, kind: str) -> str:
    """The time column as seconds (or as its own number), text read as ISO 8601 with any
    offset kept (TIMESTAMPTZ)."""
    q = quote_identifier(column)
    if is_numeric_type(kind):
        return f"CAST({q} AS DOUBLE)"
    if base_type(kind).startswith(("TIMESTAMP", "DATE")):
        return f"epoch({q})"
    return f"epoch(try_cast({q} AS TIMESTAMPTZ))"


def time_axis(
    con: duckdb.DuckDBPyConnection, relation: str, column: str, kind: str, windows: int
) -> TimeAxis | str:
    """The windows, cut evenly between the 0.5th and 99.5th percentiles of the times so that
    one stray date (1970, 2099) cannot squeeze all rows into one window; rows outside fall
    into the first or last window. A string says why there are no windows."""
    expression = time_expression(column, kind)
    row = fetch_one(
        con,
        f"SELECT min({expression}), max({expression}), "
        f"approx_quantile({expression}, [{TIME_TRIM}, {1 - TIME_TRIM}]), "
        f"count({quote_identifier(column)}), count({expression}) "
        f"FROM {quote_identifier(relation)}",
    )
    present, parsed = (int(row[3]), int(row[4])) if row else (0, 0)
    if present and not parsed:
        return (
            f"none of the {present} values of {column} reads as a time; write times in "
            "ISO 8601 (2024-07-01, 2024-07-01 13:05:00 or 2024-07-01T13:05:00+02:00)"
        )
    if not row or row[0] is None or row[1] is None or row[1] <= row[0]:
        return f"{column} holds {'a single time' if parsed else 'no times'}"
    low, high = float(row[0]), float(row[1])
    trimmed_low, trimmed_high = (float(v) for v in row[2])
    if trimmed_high <= trimmed_low:
        trimmed_low, trimmed_high = low, high
    # Ordinary data ends close to its extreme percentiles: keep the whole range then, so the
    # windows start at the first time; only far strays are left to the end windows.
    core = trimmed_high - trimmed_low
    if trimmed_low - low <= 0.05 * core:
        trimmed_low = low
    if high - trimmed_high <= 0.05 * core:
        trimmed_high = high
    step = (trimmed_high - trimmed_low) / windows
    raw = [trimmed_low + step * i for i in range(1, windows)]
    if is_numeric_type(kind):
        boundaries = raw
    else:
        unit = 86400.0 if base_type(kind) == "DATE" or step >= 2 * 86400 else 1.0
        boundaries = [math.ceil(b / unit) * unit for b in raw]
    boundaries = sorted({b for b in boundaries if low < b <= high})
    unparsed = present - parsed
    note = (
        f"{unparsed} of {present} values of {column} do not read as times and were left out; "
        "write times in ISO 8601"
        if unparsed
        else ""
    )
    return TimeAxis(column, kind, expression, boundaries, low, high, note)


def auto_slice_columns(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    types: dict[str, str],
    exclude: Sequence[str],
    settings: DriftSettings,
) -> list[str]:
    """Text columns with 2..auto_slice_distinct values, fewest values first."""
    candidates = [
        c
        for c, k in types.items()
        if is_text_type(k) and c not in exclude and not c.startswith("_cairn")
    ]
    if not candidates:
        return []
    parts = ", ".join(f"approx_count_distinct({quote_identifier(c)})" for c in candidates)
    row = fetch_one(con, f"SELECT {parts} FROM {quote_identifier(relation)}") or ()
    counted = [(int(n), c) for c, n in zip(candidates, row, strict=True)]
    chosen = sorted((n, c) for n, c in counted if 2 <= n <= settings.auto_slice_distinct)
    return [c for _, c in chosen[: settings.auto_slice_columns]]


def measures_of(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    types: dict[str, str],
    columns: Sequence[str],
    settings: DriftSettings,
    skipped: dict[str, str],
) -> list[Measure]:
    source = quote_identifier(relation)
    numeric = [c for c in columns if is_numeric_type(types[c])]
    text = [c for c in columns if is_text_type(types[c])]
    for c in columns:
        if c not in numeric and c not in text:
            skipped[c] = f"type {types[c]} is neither numeric nor text"
    if not numeric and not text:
        return []
    percentiles = "[" + ", ".join(str(i / PERCENTILES) for i in range(1, PERCENTILES)) + "]"
    probes = []  # one pass: counts, distinct values and percentile edges of every column
    for c in numeric + text:
        q = quote_identifier(c)
        probes += [f"count({q})", f"approx_count_distinct({q})"]
    for c in numeric:
        x = f"CAST({quote_identifier(c)} AS DOUBLE)"
        probes.append(f"approx_quantile({x}, {percentiles}::FLOAT[]) FILTER (WHERE isfinite({x}))")
        probes.append(
            f"max({x}) FILTER (WHERE isfinite({x})) - min({x}) FILTER (WHERE isfinite({x}))"
        )
    probes.append("count(*)")
    row = fetch_one(con, f"SELECT {', '.join(probes)} FROM {source}") or ()
    total = int(row[-1]) if row else 0
    both = numeric + text
    counts = {c: (int(row[2 * i]), int(row[2 * i + 1])) for i, c in enumerate(both)}
    edges_of = {c: row[2 * len(both) + 2 * i] for i, c in enumerate(numeric)}
    span_of = {c: row[2 * len(both) + 2 * i + 1] for i, c in enumerate(numeric)}
    measures: list[Measure] = []
    for c in numeric:
        present, distinct = counts[c]
        unique = tuple(sorted({float(e) for e in edges_of[c] or [] if np.isfinite(e)}))
        if distinct < 2:
            skipped[c] = "a single value"
        elif looks_like_key(c, types[c], present, distinct, span_of[c]):
            skipped[c] = "looks like a key (a name ending in id/key, or one number per row)"
        elif not unique:
            skipped[c] = "no finite values"
        else:
            measures.append(Measure(c, "values", unique))
            if present < total:
                measures.append(Measure(c, "missing share"))
    for c in text:
        distinct = counts[c][1]
        if distinct > settings.max_categories:
            skipped[c] = f"about {distinct} values (more than {settings.max_categories})"
        elif distinct < 2 and counts[c][0] == total:
            skipped[c] = "a single value"
        else:
            measures.append(Measure(c, "categories"))
    return measures


_KEY_NAME = re.compile(r"(?i:(^|[^a-z])(id|key))$|[a-z0-9](Id|ID|Key)$")


def looks_like_key(column: str, kind: str, present: int, distinct: int, span: float | None) -> bool:
    """A row identifier rather than a measure: named like one (`shop_id`, `userKey`), or
    whole numbers, each row its own, packed into a range about as wide as the row count
    (1, 2, 3, ...). Whole-dollar prices are distinct too, but spread over a far wider range."""
    if _KEY_NAME.search(column):
        return True
    if "INT" not in base_type(kind) or not present or span is None:
        return False
    # approx_count_distinct errs by a few percent, hence "about every row".
    return distinct >= 0.95 * present and span + 1 <= 1.5 * present


def double_list(values: Sequence[float]) -> str:
    return "CAST('[" + ", ".join(repr(v) for v in values) + "]' AS DOUBLE[])"


def window_sql(time: TimeAxis | None) -> str:
    """The window number of a row: how many boundaries its time has reached."""
    if time is None or not time.boundaries:
        return "0"
    return " + ".join(f"({time.expression} >= {b!r})::INTEGER" for b in time.boundaries)


def count_query(
    relation: str,
    time: TimeAxis | None,
    slice_columns: Sequence[str],
    top_values: dict[str, list[Any]],
    measures: Sequence[Measure],
) -> str:
    """Counts per (slice, window) of every measure, for all slice columns in one pass.

    Slice values are text; a limited slice column's other values are marked (`_cairn_o`)
    so they form their own group, which the caller drops.
    """
    selected = [f"{window_sql(time)} AS _cairn_w"]
    for i, column in enumerate(slice_columns):
        q = quote_identifier(column)
        selected.append(f"CAST({q} AS VARCHAR) AS _cairn_s{i}")
        values = top_values.get(column)
        if values is None:
            selected.append(f"FALSE AS _cairn_o{i}")
        else:
            listed = ", ".join(sql_text(str(v)) for v in values)
            selected.append(
                f"coalesce(CAST({q} AS VARCHAR) NOT IN ({listed}), FALSE) AS _cairn_o{i}"
            )
    for j, m in enumerate(measures):
        q = quote_identifier(m.column)
        if m.measure == "values":
            selected.append(f"CAST({q} AS DOUBLE) AS _cairn_m{j}")
        elif m.measure == "categories":
            selected.append(f"CAST({q} AS VARCHAR) AS _cairn_m{j}")
    where = f"WHERE {time.expression} IS NOT NULL" if time else ""
    aggregates = ["count(*)"]
    for j, m in enumerate(measures):
        if m.measure == "values":
            aggregates.append(f"histogram(_cairn_m{j}, {double_list(m.edges)})")
        elif m.measure == "categories":
            aggregates.append(f"histogram(_cairn_m{j})")
        else:
            aggregates.append(f"count({quote_identifier(m.column)})")
    n = len(slice_columns)
    sets = ["(_cairn_w)"] + [f"(_cairn_s{i}, _cairn_o{i}, _cairn_w)" for i in range(n)]
    slices = [f"_cairn_s{i}" for i in range(n)]
    grouping = f"grouping({', '.join(slices)})" if n else "0"
    keys = [*slices, *(f"_cairn_o{i}" for i in range(n))]
    return (
        f"WITH base AS (SELECT *, {', '.join(selected)} FROM {quote_identifier(relation)} {where}) "
        f"SELECT {grouping}, {''.join(k + ', ' for k in keys)}_cairn_w, {', '.join(aggregates)} "
        f"FROM base GROUP BY GROUPING SETS ({', '.join(sets)})"
    )


def bins_of(measure: Measure, cell: Any, rows: int) -> dict[Any, int]:
    """One group's counts by bin: a histogram map, or the count of values present."""
    if measure.measure == "missing share":
        return {"missing": rows - int(cell or 0), "present": int(cell or 0)}
    counts = {k: int(v) for k, v in (cell or {}).items()}
    if measure.measure == "categories":
        missing = rows - sum(counts.values())
        if missing:
            counts[None] = missing
    return counts


def slice_sql(column: str, value: Any) -> str:
    """The count query's test for a slice value (slice values are counted as text)."""
    q = quote_identifier(column)
    return f"{q} IS NULL" if value is None else f"CAST({q} AS VARCHAR) = {sql_text(str(value))}"


def refine(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    time: TimeAxis,
    slice_columns: Sequence[str],
    measures: Sequence[Measure],
    counts: dict[tuple[int, Any], list[list[dict[Any, int]]]],
    windows: int,
    settings: DriftSettings,
) -> dict[tuple[tuple[int, Any], int], tuple[tuple[float, ...], list[dict[Any, int]]]]:
    """Own percentile bins for slices whose values sit in a few of the column's bins.

    A slice of mansions among flats falls into the top percentile or two of the whole
    column's prices: counted there, a 50 % rise inside the slice cannot show. Such slices
    get two more passes: their own percentiles, then their counts per window in those.
    """
    wanted: list[tuple[int, tuple[int, Any], int]] = []
    for key, per_measure in counts.items():
        if key[0] < 0:
            continue
        for j, measure in enumerate(measures):
            if measure.measure != "values" or measure.column == slice_columns[key[0]]:
                continue
            pooled = pooled_counts(measure, per_measure[j])
            rows = sum(pooled.values())
            occupied = sum(1 for n in pooled.values() if n)
            if rows >= 2 * settings.min_rows and occupied < REFINE_BELOW_BINS:
                wanted.append((rows, key, j))
    if not wanted:
        return {}
    wanted = sorted(wanted, key=lambda w: -w[0])[:MAX_REFINED]
    source = quote_identifier(relation)
    where = f"WHERE {time.expression} IS NOT NULL"
    percentiles = "[" + ", ".join(str(i / PERCENTILES) for i in range(1, PERCENTILES)) + "]"
    conditions, values = [], []
    for _, key, j in wanted:
        x = f"CAST({quote_identifier(measures[j].column)} AS DOUBLE)"
        conditions.append(f"{slice_sql(slice_columns[key[0]], key[1])} AND isfinite({x})")
        values.append(x)
    quantiles = ", ".join(
        f"approx_quantile({x}, {percentiles}::FLOAT[]) FILTER (WHERE {c})"
        for x, c in zip(values, conditions, strict=True)
    )
    edges_row = fetch_one(con, f"SELECT {quantiles} FROM {source} {where}") or ()
    edges = [tuple(sorted({float(e) for e in row or [] if np.isfinite(e)})) for row in edges_row]
    histograms = ", ".join(
        f"histogram({x}, {double_list(e or (0.0,))}) FILTER (WHERE {c})"
        for x, c, e in zip(values, conditions, edges, strict=True)
    )
    refined: dict[tuple[tuple[int, Any], int], tuple[tuple[float, ...], list[dict[Any, int]]]] = {}
    for _, key, j in wanted:
        refined[(key, j)] = (edges[len(refined)], [{} for _ in range(windows)])
    per_window = con.execute(
        f"SELECT {window_sql(time)} AS _cairn_w, {histograms} FROM {source} {where} GROUP BY 1"
    ).fetchall()
    for row in per_window:
        for (_, key, j), cell in zip(wanted, row[1:], strict=True):
            refined[(key, j)][1][int(row[0])] = {k: int(v) for k, v in (cell or {}).items()}
    return {k: v for k, v in refined.items() if v[0]}


def most_frequent_values(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    slice_columns: Sequence[str],
    settings: DriftSettings,
) -> dict[str, list[Any]]:
    """Slice columns with more values than max_slice_values -> their most frequent values."""
    limited = {}
    for column in slice_columns:
        q = quote_identifier(column)
        rows = con.execute(
            f"SELECT CAST({q} AS VARCHAR) v, count(*) n FROM {quote_identifier(relation)} "
            f"WHERE {q} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {settings.max_slice_values + 1}"
        ).fetchall()
        if len(rows) > settings.max_slice_values:
            limited[column] = [r[0] for r in rows[: settings.max_slice_values]]
    return limited


def aligned(
    measure: Measure, tables: Sequence[dict[Any, int]], edges: Sequence[float] | None = None
) -> list[np.ndarray]:
    """Count vectors over one common, ordered set of bins (`edges`: a slice's own)."""
    if measure.measure == "values":
        keys: list[Any] = [*(measure.edges if edges is None else edges), math.inf]
    else:
        keys = sorted({k for t in tables for k in t}, key=lambda k: (k is None, str(k)))
    return [np.array([t.get(k, 0) for k in keys], dtype=float) for t in tables]


def pooled_counts(measure: Measure, tables: Sequence[dict[Any, int]]) -> dict[Any, int]:
    pooled: dict[Any, int] = {}
    for table in tables:
        for key, n in table.items():
            pooled[key] = pooled.get(key, 0) + n
    return pooled
