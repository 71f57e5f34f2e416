"""Rewrite a column through a value map built in Python from its distinct values.

Spellings and units have few distinct values even in huge tables, so the Python rules run
once per distinct value and DuckDB applies the resulting map in one order-preserving scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from cairn.data.sources import quote_identifier
from cairn.data.workspace import Workspace


def distinct_counts(ws: Workspace, relation: str, column: str) -> pd.DataFrame:
    """Distinct non-null values of `column` (as text) with how often each occurs."""
    q = quote_identifier(column)
    return ws.con.execute(
        f"SELECT CAST({q} AS VARCHAR) AS value, count(*) AS n FROM {quote_identifier(relation)} "
        f"WHERE {q} IS NOT NULL GROUP BY ALL ORDER BY n DESC, value"
    ).df()


def apply_value_map(
    ws: Workspace,
    relation: str,
    column: str,
    mapping: Mapping[str, Any],
    output_type: str,
    target: str | None = None,
) -> str:
    """New table where `target` (default: `column` itself) holds `mapping[column]`.

    Values absent from the map become NULL, so every distinct value must be mapped.
    """
    frame = pd.DataFrame({"_old": list(mapping), "_new": list(mapping.values())})
    ws.con.register("_cairn_map", frame)
    q = quote_identifier(column)
    mapped = f"CAST(lk.lookup[CAST(t.{q} AS VARCHAR)] AS {output_type})"
    target = target or column
    if target == column:
        projection = f"t.* REPLACE ({mapped} AS {q})"
    else:
        projection = f"t.*, {mapped} AS {quote_identifier(target)}"
    out = ws.new_name("mapped")
    ws.con.execute(
        f"CREATE TABLE {quote_identifier(out)} AS SELECT {projection} "
        f"FROM {quote_identifier(relation)} t, "
        f"(SELECT map(list(_old), list(_new)) AS lookup FROM _cairn_map) lk"
    )
    ws.con.unregister("_cairn_map")
    return out
