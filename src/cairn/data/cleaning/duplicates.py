"""Duplicate rows: keep the first of each group of identical rows (or identical keys)."""

from __future__ import annotations

from collections.abc import Sequence

from cairn.data.cleaning._columns import require_columns
from cairn.data.sources import quote_identifier
from cairn.data.workspace import StepReport, Workspace


def drop_duplicates(
    ws: Workspace, relation: str, subset: Sequence[str] | None = None
) -> tuple[str, StepReport]:
    """Remove rows identical to an earlier one on `subset` (all columns by default)."""
    types = require_columns(ws, relation, subset or [], "drop_duplicates")
    keys = list(subset or types)
    out = ws.new_name("dedup")
    source = quote_identifier(relation)
    if subset:
        partition = ", ".join(quote_identifier(k) for k in keys)
        ws.con.execute(
            f"CREATE TABLE {quote_identifier(out)} AS SELECT * EXCLUDE (_cairn_pos, _cairn_rank) "
            f"FROM (SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY _cairn_pos) "
            f"AS _cairn_rank FROM (SELECT *, row_number() OVER () AS _cairn_pos FROM {source})) "
            f"WHERE _cairn_rank = 1 ORDER BY _cairn_pos"
        )
    else:
        # Identical rows: a hash aggregate on every column, kept in first-seen order.
        columns = ", ".join(quote_identifier(k) for k in keys)
        ws.con.execute(
            f"CREATE TABLE {quote_identifier(out)} AS SELECT * EXCLUDE (_cairn_pos) FROM ("
            f"SELECT {columns}, min(_cairn_pos) AS _cairn_pos FROM ("
            f"SELECT *, row_number() OVER () AS _cairn_pos FROM {source}) GROUP BY {columns}) "
            f"ORDER BY _cairn_pos"
        )
    before, after = ws.count(relation), ws.count(out)
    return out, StepReport(
        "drop_duplicates", before, after, {"subset": keys, "removed": before - after}
    )
