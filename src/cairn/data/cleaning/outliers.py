"""Outliers by IQR fences or z-score: flag them, clip them to the fences, or drop the rows."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cairn.data.cleaning._columns import require_columns
from cairn.data.sources import fetch_one, quote_identifier
from cairn.data.workspace import StepReport, Workspace
from cairn.domain.errors import invalid_field

METHODS = ("iqr", "zscore")
ACTIONS = ("flag", "clip", "drop")


# Exact quantiles hold every value (8 bytes each) until the end of the pass; they may use
# this share of DuckDB's memory limit.
EXACT_QUANTILE_SHARE = 0.25


def quantile_function(ws: Workspace, relation: str, columns: int = 1) -> str:
    """Exact quantiles while `columns` columns of values fit in a quarter of DuckDB's memory
    (67 million rows of two columns under 4 GB; exact is also several times faster than the
    sketch); above, t-digest sketches that need little memory."""
    budget = ws.memory_limit_bytes() * EXACT_QUANTILE_SHARE
    exact = ws.count(relation) * 8 * max(columns, 1) <= budget
    return "quantile_cont" if exact else "approx_quantile"


def _all_bounds(
    ws: Workspace,
    relation: str,
    columns: Sequence[str],
    method: str = "iqr",
    threshold: float | None = None,
) -> dict[str, tuple[float, float]]:
    """The fences of every column from one aggregate over `relation`: Q1 - k·IQR, Q3 + k·IQR
    (k=1.5) or mean ± z·sd (z=3). Fences that infinities make undefined are left open."""
    if method == "iqr":
        quantile = quantile_function(ws, relation, len(columns))
        parts = [f"{quantile}({q}, [0.25, 0.75])" for q in map(quote_identifier, columns)]
        k = 1.5 if threshold is None else threshold
    else:
        parts = [f"avg({q}), stddev_pop({q})" for q in map(quote_identifier, columns)]
        k = 3.0 if threshold is None else threshold
    row = fetch_one(ws.con, f"SELECT {', '.join(parts)} FROM {quote_identifier(relation)}") or ()
    bounds = {}
    for index, column in enumerate(columns):
        if method == "iqr":
            pair = row[index] if row else None
            first, second = (pair[0], pair[1]) if pair else (None, None)
        else:
            first, second = (row[2 * index], row[2 * index + 1]) if row else (None, None)
        if first is None:
            bounds[column] = (0.0, 0.0)
        elif method == "iqr":
            low, high = float(first), float(second if second is not None else first)
            bounds[column] = (low - k * (high - low), high + k * (high - low))
        else:
            mean, sd = float(first), float(second or 0.0)
            bounds[column] = (mean - k * sd, mean + k * sd)
    return {
        column: (low, high) if not (math.isnan(low) or math.isnan(high)) else (-math.inf, math.inf)
        for column, (low, high) in bounds.items()
    }


def _literal(value: float) -> str:
    """A DOUBLE literal for SQL, infinities included (repr would give `inf`, a column name)."""
    return f"CAST('{value!r}' AS DOUBLE)"


def handle_outliers(
    ws: Workspace,
    relation: str,
    columns: Sequence[str],
    method: str = "iqr",
    action: str = "flag",
    threshold: float | None = None,
) -> tuple[str, StepReport]:
    """Apply `action` to values outside the `method` fences of each numeric column.

    The fences need every row, so this reads its input twice (fences, then the counts
    outside them) and composes a view that applies them.
    """
    if method not in METHODS:
        raise invalid_field("outliers.method", f"unknown method {method!r}; use iqr or zscore.")
    if action not in ACTIONS:
        raise invalid_field(
            "outliers.action", f"unknown action {action!r}; use flag, clip or drop."
        )
    require_columns(ws, relation, columns, "outliers", numeric=True)
    base = ws.reusable(relation)
    bounds = _all_bounds(ws, base, columns, method, threshold)
    outside = {
        c: f"({quote_identifier(c)} < {_literal(lo)} OR {quote_identifier(c)} > {_literal(hi)})"
        for c, (lo, hi) in bounds.items()
    }
    keep = " AND ".join(f"NOT coalesce({cond}, false)" for cond in outside.values())
    counts_sql = ", ".join(
        [*(f"count(*) FILTER (WHERE {cond})" for cond in outside.values()), "count(*)"]
        + ([f"count(*) FILTER (WHERE {keep})"] if action == "drop" else [])
    )
    row = fetch_one(ws.con, f"SELECT {counts_sql} FROM {quote_identifier(base)}") or ()
    values = [int(v or 0) for v in row]
    counts = dict(zip(columns, values[: len(columns)], strict=True))
    before = values[len(columns)] if values else 0
    ws.note_count(base, before)
    ws.note_count(relation, before)
    source = quote_identifier(base)
    if action == "flag":
        flags = ", ".join(
            f"coalesce({cond}, false) AS {quote_identifier(c + '_outlier')}"
            for c, cond in outside.items()
        )
        out = ws.view("outliers", f"SELECT *, {flags} FROM {source}", rows_like=base)
    elif action == "clip":
        clipped = ", ".join(
            f"CASE WHEN {quote_identifier(c)} IS NULL THEN NULL ELSE "
            f"least(greatest({quote_identifier(c)}, {_literal(lo)}), {_literal(hi)}) "
            f"END AS {quote_identifier(c)}"
            for c, (lo, hi) in bounds.items()
        )
        out = ws.view("outliers", f"SELECT * REPLACE ({clipped}) FROM {source}", rows_like=base)
    else:
        out = ws.view("outliers", f"SELECT * FROM {source} WHERE {keep}")
        ws.note_count(out, values[-1])
    return out, StepReport(
        f"outliers ({method}, {action})",
        before,
        ws.count(out),
        {"bounds": {c: [lo, hi] for c, (lo, hi) in bounds.items()}, "outliers_per_column": counts},
    )
