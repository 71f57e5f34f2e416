"""Outliers by IQR fences or z-score: flag them, clip them to the fences, or drop the rows."""

from __future__ import annotations

from collections.abc import Sequence

from cairn.data.cleaning._columns import require_columns
from cairn.data.sources import fetch_one, quote_identifier
from cairn.data.workspace import StepReport, Workspace
from cairn.domain.errors import invalid_field

METHODS = ("iqr", "zscore")
ACTIONS = ("flag", "clip", "drop")


EXACT_QUANTILE_ROWS = 1_000_000


def quantile_function(ws: Workspace, relation: str) -> str:
    """Exact quantiles up to a million rows; above, t-digest sketches that need little memory."""
    return "quantile_cont" if ws.count(relation) <= EXACT_QUANTILE_ROWS else "approx_quantile"


def outlier_bounds(
    ws: Workspace, relation: str, column: str, method: str = "iqr", threshold: float | None = None
) -> tuple[float, float]:
    """Lower and upper fences: Q1 - k·IQR, Q3 + k·IQR (k=1.5) or mean ± z·sd (z=3)."""
    q = quote_identifier(column)
    if method == "iqr":
        k = 1.5 if threshold is None else threshold
        quantile = quantile_function(ws, relation)
        row = fetch_one(
            ws.con,
            f"SELECT {quantile}({q}, 0.25), {quantile}({q}, 0.75) FROM {quote_identifier(relation)}",
        )
        low, high = (float(row[0]), float(row[1])) if row and row[0] is not None else (0.0, 0.0)
        spread = high - low
        return low - k * spread, high + k * spread
    z = 3.0 if threshold is None else threshold
    row = fetch_one(ws.con, f"SELECT avg({q}), stddev_pop({q}) FROM {quote_identifier(relation)}")
    mean, sd = (float(row[0]), float(row[1] or 0.0)) if row and row[0] is not None else (0.0, 0.0)
    return mean - z * sd, mean + z * sd


def handle_outliers(
    ws: Workspace,
    relation: str,
    columns: Sequence[str],
    method: str = "iqr",
    action: str = "flag",
    threshold: float | None = None,
) -> tuple[str, StepReport]:
    """Apply `action` to values outside the `method` fences of each numeric column."""
    if method not in METHODS:
        raise invalid_field("outliers.method", f"unknown method {method!r}; use iqr or zscore.")
    if action not in ACTIONS:
        raise invalid_field(
            "outliers.action", f"unknown action {action!r}; use flag, clip or drop."
        )
    require_columns(ws, relation, columns, "outliers", numeric=True)
    bounds = {c: outlier_bounds(ws, relation, c, method, threshold) for c in columns}
    outside = {
        c: f"({quote_identifier(c)} < {lo!r} OR {quote_identifier(c)} > {hi!r})"
        for c, (lo, hi) in bounds.items()
    }
    counts_sql = ", ".join(f"count(*) FILTER (WHERE {cond})" for cond in outside.values())
    row = fetch_one(ws.con, f"SELECT {counts_sql} FROM {quote_identifier(relation)}")
    counts = {c: int(v) for c, v in zip(columns, row or [], strict=True)}
    out = ws.new_name("outliers")
    source = quote_identifier(relation)
    if action == "flag":
        flags = ", ".join(
            f"coalesce({cond}, false) AS {quote_identifier(c + '_outlier')}"
            for c, cond in outside.items()
        )
        sql = f"SELECT *, {flags} FROM {source}"
    elif action == "clip":
        clipped = ", ".join(
            f"CASE WHEN {quote_identifier(c)} IS NULL THEN NULL ELSE "
            f"least(greatest({quote_identifier(c)}, {lo!r}), {hi!r}) END AS {quote_identifier(c)}"
            for c, (lo, hi) in bounds.items()
        )
        sql = f"SELECT * REPLACE ({clipped}) FROM {source}"
    else:
        keep = " AND ".join(f"NOT coalesce({cond}, false)" for cond in outside.values())
        sql = f"SELECT * FROM {source} WHERE {keep}"
    ws.con.execute(f"CREATE TABLE {quote_identifier(out)} AS {sql}")
    return out, StepReport(
        f"outliers ({method}, {action})",
        ws.count(relation),
        ws.count(out),
        {"bounds": {c: [lo, hi] for c, (lo, hi) in bounds.items()}, "outliers_per_column": counts},
    )
