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


def _one_pass(
    ws: Workspace,
    relation: str,
    columns: Sequence[str],
    keep: str | None = None,
    extra: Sequence[str] = (),
) -> tuple[dict[str, int], int, int, list[Any]]:
    """In one pass: missing values per column, the row count, rows matching `keep` (all
    without one) and the values of the `extra` aggregates."""
    parts = [f"count(*) - count({quote_identifier(c)})" for c in columns]
    parts += ["count(*)", f"count(*) FILTER (WHERE {keep or 'true'})", *extra]
    row = list(
        fetch_one(ws.con, f"SELECT {', '.join(parts)} FROM {quote_identifier(relation)}") or ()
    )
    row += [None] * (len(parts) - len(row))
    counts = [int(v or 0) for v in row[: len(columns) + 2]]
    ws.note_count(relation, counts[len(columns)])
    missing = dict(zip(columns, counts[: len(columns)], strict=True))
    return missing, counts[len(columns)], counts[len(columns) + 1], row[len(columns) + 2 :]


def drop_missing(
    ws: Workspace, relation: str, columns: Sequence[str] | None = None
) -> tuple[str, StepReport]:
    """Drop rows with a missing value in any of `columns` (all columns by default)."""
    types = require_columns(ws, relation, columns or [], "missing")
    columns = list(columns or types)
    base = ws.reusable(relation)
    condition = " AND ".join(f"{quote_identifier(c)} IS NOT NULL" for c in columns) or "true"
    missing, before, after, _ = _one_pass(ws, base, columns, condition)
    ws.note_count(relation, before)
    out = ws.view("dropna", f"SELECT * FROM {quote_identifier(base)} WHERE {condition}")
    ws.note_count(out, after)
    return out, StepReport("missing (drop)", before, after, {"missing_per_column": missing})


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
    base = ws.reusable(relation)
    statistics: list[str] = []
    for column in columns:
        q = quote_identifier(column)
        if strategy in ("mean", "median"):
            if not is_numeric(types[column]):
                raise invalid_field(
                    "missing.strategy",
                    f"{strategy} needs a numeric column; {column!r} is {types[column]}. Use mode or constant.",
                )
            statistics.append(f"{'avg' if strategy == 'mean' else 'median'}({q})")
        elif strategy == "mode":
            statistics.append(f"mode({q})")
    missing, total, _, found = _one_pass(ws, base, columns, extra=statistics)
    ws.note_count(relation, total)
    fills: dict[str, Any] = {
        c: fill_value if strategy == "constant" else found[i] for i, c in enumerate(columns)
    }
    # The fill values sit in a one-row table the view reads: exact types, no quoting, and a
    # value that does not fit the column fails here, in this step.
    slots = {c: quote_identifier(f"_fill_{i}") for i, c in enumerate(columns)}
    fill_table = ws.table(
        "fills",
        "SELECT "
        + ", ".join(f"CAST($p{i} AS {types[c]}) AS {slots[c]}" for i, c in enumerate(columns)),
        {f"p{i}": fills[c] for i, c in enumerate(columns)},
    )
    replace = ", ".join(
        f"coalesce(b.{quote_identifier(c)}, f.{slots[c]}) AS {quote_identifier(c)}" for c in columns
    )
    indicators = "".join(
        f", b.{quote_identifier(c)} IS NULL AS {quote_identifier(c + '_missing')}"
        for c in columns
        if add_indicator
    )
    out = ws.view(
        "imputed",
        f"SELECT b.* REPLACE ({replace}){indicators} "
        f"FROM {quote_identifier(base)} b, {quote_identifier(fill_table)} f",
        rows_like=base,
    )
    return out, StepReport(
        f"missing ({strategy})",
        total,
        total,
        {"filled_per_column": missing, "fill_values": fills, "indicator": add_indicator},
    )
