"""Missing values: drop the rows, or fill them over the whole dataset with an indicator.

Filling here uses statistics of all rows; to fit on the training split only (what serving
should repeat), use `cairn.data.transformers.MissingImputer` in the preprocessing pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cairn.data.cleaning._columns import is_numeric, require_columns
from cairn.data.sources import fetch_one, quote_identifier
from cairn.data.workspace import StepReport, Workspace
from cairn.domain.errors import invalid_field

STRATEGIES = ("drop", "mean", "median", "mode", "constant")


def _missing_counts(ws: Workspace, relation: str, columns: Sequence[str]) -> dict[str, int]:
    parts = ", ".join(f"count(*) - count({quote_identifier(c)})" for c in columns)
    row = fetch_one(ws.con, f"SELECT {parts} FROM {quote_identifier(relation)}")
    return {c: int(v) for c, v in zip(columns, row or [], strict=True)}


def drop_missing(
    ws: Workspace, relation: str, columns: Sequence[str] | None = None
) -> tuple[str, StepReport]:
    """Drop rows with a missing value in any of `columns` (all columns by default)."""
    types = require_columns(ws, relation, columns or [], "missing")
    columns = list(columns or types)
    missing = _missing_counts(ws, relation, columns)
    out = ws.new_name("dropna")
    condition = " AND ".join(f"{quote_identifier(c)} IS NOT NULL" for c in columns) or "true"
    ws.con.execute(
        f"CREATE TABLE {quote_identifier(out)} AS SELECT * FROM {quote_identifier(relation)} "
        f"WHERE {condition}"
    )
    return out, StepReport(
        "missing (drop)", ws.count(relation), ws.count(out), {"missing_per_column": missing}
    )


def impute_missing(
    ws: Workspace,
    relation: str,
    columns: Sequence[str],
    strategy: str = "median",
    fill_value: Any = None,
    add_indicator: bool = False,
) -> tuple[str, StepReport]:
    """Fill missing values of `columns` by mean, median, mode or a constant."""
    if strategy not in STRATEGIES[1:]:
        raise invalid_field(
            "missing.strategy",
            f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}.",
        )
    if strategy == "constant" and fill_value is None:
        raise invalid_field("missing.fill_value", "strategy constant needs `fill_value:`.")
    types = require_columns(ws, relation, columns, "missing")
    fills: dict[str, Any] = {}
    for column in columns:
        q = quote_identifier(column)
        if strategy in ("mean", "median"):
            if not is_numeric(types[column]):
                raise invalid_field(
                    "missing.strategy",
                    f"{strategy} needs a numeric column; {column!r} is {types[column]}. Use mode or constant.",
                )
            agg = "avg" if strategy == "mean" else "median"
            value = fetch_one(ws.con, f"SELECT {agg}({q}) FROM {quote_identifier(relation)}")
            fills[column] = value[0] if value else None
        elif strategy == "mode":
            value = fetch_one(ws.con, f"SELECT mode({q}) FROM {quote_identifier(relation)}")
            fills[column] = value[0] if value else None
        else:
            fills[column] = fill_value
    missing = _missing_counts(ws, relation, columns)
    ws.con.execute("DROP TABLE IF EXISTS _cairn_fills")
    replace = []
    for index, column in enumerate(columns):
        q = quote_identifier(column)
        replace.append(f"coalesce({q}, CAST($p{index} AS {types[column]})) AS {q}")
    indicators = (
        ", "
        + ", ".join(
            f"{quote_identifier(c)} IS NULL AS {quote_identifier(c + '_missing')}" for c in columns
        )
        if add_indicator
        else ""
    )
    out = ws.new_name("imputed")
    ws.con.execute(
        f"CREATE TABLE {quote_identifier(out)} AS SELECT * REPLACE ({', '.join(replace)}){indicators} "
        f"FROM {quote_identifier(relation)}",
        {f"p{i}": fills[c] for i, c in enumerate(columns)},
    )
    return out, StepReport(
        f"missing ({strategy})",
        ws.count(relation),
        ws.count(out),
        {"filled_per_column": missing, "fill_values": fills, "indicator": add_indicator},
    )
