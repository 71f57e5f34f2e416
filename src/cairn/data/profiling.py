"""Profile a table: per-column statistics in DuckDB, distributions and drift on a sample."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cairn.data.cleaning._columns import is_numeric
from cairn.data.cleaning.outliers import quantile_function
from cairn.data.drift import DriftResult, compare
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
    drift: list[DriftResult] = field(default_factory=list)


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
        found = fetch_one(
            ws.con, f"SELECT count(*) FROM {source} WHERE {q} < ? OR {q} > ?", [low, high]
        )
        profile.outliers = int(found[0]) if found else 0
    elif present:
        bounds = fetch_one(
            ws.con, f"SELECT min({q})::VARCHAR, max({q})::VARCHAR FROM {source}"
        ) or (None, None)
        profile.minimum, profile.maximum = bounds
        top = ws.con.execute(
            f"SELECT CAST({q} AS VARCHAR) v, count(*) n FROM {source} WHERE {q} IS NOT NULL GROUP BY 1 ORDER BY n DESC, v LIMIT 10"
        ).fetchall()
        profile.top_values = [(str(v), int(n)) for v, n in top]
    return profile


def profile(
    ws: Workspace,
    relation: str,
    time_column: str | None = None,
    place_column: str | None = None,
    sample_rows: int = 100_000,
    max_columns: int = 60,
) -> Profile:
    """Statistics of every column of `relation`, trends over time/place and drift between slices."""
    types = columns_of(ws.con, relation)
    for option, column in (("time_column", time_column), ("place_column", place_column)):
        if column and column not in types:
            raise invalid_field(option, f"no column {column!r}; the data has {', '.join(types)}.")
    names = [c for c in types if not c.startswith("_cairn")][:max_columns]
    columns = [_column_profile(ws, relation, n, types[n]) for n in names]
    sample = ws.con.execute(
        f"SELECT * FROM {quote_identifier(relation)} USING SAMPLE {int(sample_rows)} ROWS (reservoir, 42)"
    ).df()
    numeric = [c.name for c in columns if c.numeric and c.distinct > 1]
    correlations = sample[numeric].astype(float).corr() if len(numeric) > 1 else pd.DataFrame()
    result = Profile(ws.count(relation), columns, sample, correlations, time_column, place_column)
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
        middle = stamps.median()
        early, late = sample[stamps <= middle], sample[stamps > middle]
        for column in [c.name for c in columns if c.name != time_column]:
            result.drift.append(
                compare(column, "first half", early[column], "second half", late[column])
            )
    if place_column:
        places = sample[place_column].astype(str)
        top_places = places.value_counts().index[:6]
        for column in measured:
            result.places[column] = (
                sample.groupby(places)[column].agg(["mean", "count"]).loc[top_places]
            )
        for place in top_places[:5]:
            inside = places == place
            for column in measured:
                result.drift.append(
                    compare(
                        column,
                        "other places",
                        sample.loc[~inside, column],
                        str(place),
                        sample.loc[inside, column],
                    )
                )
    return result


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and bool(np.isfinite(value))
