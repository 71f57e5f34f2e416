"""Rewrite a column through a value map built in Python from its distinct values.

Spellings and units have few distinct values even in huge tables, so the Python rules run
once per distinct value; the map becomes a small table and the step a view that looks each
value up with a hash join, composed into the recipe's plan like any other step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from cairn.data.sources import quote_identifier
from cairn.data.workspace import Workspace


def distinct_counts(ws: Workspace, relation: str, column: str) -> pd.DataFrame:
    """Distinct non-null values of `column` (as text) with how often each occurs.

    The pass also counts the relation's rows (nulls included), which later reports reuse.
    """
    q = quote_identifier(column)
    base = ws.reusable(relation)
    table = ws.con.execute(
        f"SELECT CAST({q} AS VARCHAR) AS value, count(*) AS n FROM {quote_identifier(base)} "
        f"GROUP BY ALL ORDER BY n DESC, value"
    ).df()
    ws.note_count(base, int(table["n"].sum()))
    ws.note_count(relation, int(table["n"].sum()))
    return table.loc[table["value"].notna()].reset_index(drop=True)


def apply_value_map(
    ws: Workspace,
    relation: str,
    column: str,
    mapping: Mapping[str, Any],
    output_type: str,
    target: str | None = None,
) -> str:
    """A view of `relation` where `target` (default: `column` itself) holds `mapping[column]`.

    Values absent from the map become NULL, so every distinct value must be mapped.
    """
    frame = pd.DataFrame({"_old": list(mapping), "_new": list(mapping.values())})
    ws.con.register("_cairn_map", frame)
    try:
        lookup = ws.table(
            "map",
            f"SELECT CAST(_old AS VARCHAR) AS _old, CAST(_new AS {output_type}) AS _new "
            f"FROM _cairn_map",
        )
    finally:
        ws.con.unregister("_cairn_map")
    q = quote_identifier(column)
    base = ws.reusable(relation)
    mapped = "lk._new"
    target = target or column
    if target == column:
        projection = f"t.* REPLACE ({mapped} AS {q})"
    else:
        projection = f"t.*, {mapped} AS {quote_identifier(target)}"
    # Every value has at most one entry, so the left join keeps each row exactly once.
    return ws.view(
        "mapped",
        f"SELECT {projection} FROM {quote_identifier(base)} t "
        f"LEFT JOIN {quote_identifier(lookup)} lk ON CAST(t.{q} AS VARCHAR) = lk._old",
        rows_like=relation,
    )
