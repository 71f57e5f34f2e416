"""Duplicate rows: keep one of each group of identical rows (or of rows with identical keys).

A dedupe is a hash aggregate over every row, the one step here that cannot stream, so its
result is stored once (the aggregate holds those rows anyway) and later steps read the table.
Which copy survives and the order of the result are arbitrary unless `keep_order` asks for
the first copy in first-seen order, which needs a row number and a sort and costs far more.
"""

from __future__ import annotations

from collections.abc import Sequence

from cairn.data.cleaning._columns import require_columns
from cairn.data.sources import columns_of, fetch_one, quote_identifier
from cairn.data.workspace import POSITION, StepReport, Workspace

_COPIES = "_cairn_copies"
_ROW = "_cairn_row"


def drop_duplicates(
    ws: Workspace,
    relation: str,
    subset: Sequence[str] | None = None,
    keep_order: bool = False,
    carry_position: bool = False,
) -> tuple[str, StepReport]:
    """Remove rows identical to another on `subset` (all columns by default).

    With `keep_order`, the first of each group stays and rows keep their first-seen order;
    `carry_position` then keeps each row's position as the hidden `POSITION` column, so the
    writes after later steps (whose hash joins reorder rows) can restore that order.
    """
    types = require_columns(ws, relation, subset or [], "drop_duplicates")
    keys = list(subset or types)
    source = quote_identifier(relation)
    positioned = POSITION in columns_of(ws.con, relation)
    if keep_order:
        out = _ordered(ws, source, keys, bool(subset), positioned, carry_position)
        before, after = ws.count(relation), ws.count(out)
    else:
        key_list = ", ".join(quote_identifier(k) for k in keys)
        others = [c for c in types if c not in keys]
        aggregates = []
        if others:
            # One aggregate of one struct takes every other column from the same row.
            fields = ", ".join(f"{quote_identifier(c)} := {quote_identifier(c)}" for c in others)
            pick = (
                f"arg_min(struct_pack({fields}), {POSITION})"
                if positioned
                else f"first(struct_pack({fields}))"
            )
            aggregates.append(f"{pick} AS {_ROW}")
        if positioned:  # a group sits where its first copy was seen
            aggregates.append(f"min({POSITION}) AS {POSITION}")
        columns = ", ".join(
            quote_identifier(c) if c in keys else f"{_ROW}.{quote_identifier(c)}" for c in types
        )
        carried = f", {POSITION}" if positioned else ""
        # The copies per group add up to the input's row count, so nothing counts it again.
        stored = ws.table(
            "dedup",
            f"SELECT {columns}{carried}, {_COPIES} FROM (SELECT {key_list}, "
            f"{''.join(a + ', ' for a in aggregates)}count(*) AS {_COPIES} "
            f"FROM {source} GROUP BY {key_list})",
        )
        after = ws.count(stored)
        known = ws.known_count(relation)
        if known is None:
            total = fetch_one(ws.con, f"SELECT sum({_COPIES}) FROM {quote_identifier(stored)}")
            known = int(total[0] or 0) if total else 0
            ws.note_count(relation, known)
        before = known
        out = ws.view("dedup", f"SELECT * EXCLUDE ({_COPIES}) FROM {quote_identifier(stored)}")
        ws.same_rows(out, stored)
    return out, StepReport(
        "drop_duplicates",
        before,
        after,
        {"subset": keys, "removed": before - after, "keep_order": keep_order},
    )


def _ordered(
    ws: Workspace, source: str, keys: list[str], by_subset: bool, positioned: bool, carry: bool
) -> str:
    """The first row of each group, in first-seen order (row numbers, then a sort)."""
    columns = ", ".join(quote_identifier(k) for k in keys)
    with_positions = (
        f"SELECT * FROM {source}"
        if positioned
        else f"SELECT *, row_number() OVER () AS {POSITION} FROM {source}"
    )
    hidden = "" if carry else f"{POSITION}, "
    if by_subset:
        sql = (
            f"SELECT * EXCLUDE ({hidden}_cairn_rank) FROM (SELECT *, row_number() OVER "
            f"(PARTITION BY {columns} ORDER BY {POSITION}) AS _cairn_rank "
            f"FROM ({with_positions})) WHERE _cairn_rank = 1 ORDER BY {POSITION}"
        )
    else:
        select = "*" if carry else f"* EXCLUDE ({POSITION})"
        sql = (
            f"SELECT {select} FROM (SELECT {columns}, min({POSITION}) AS {POSITION} "
            f"FROM ({with_positions}) GROUP BY {columns}) ORDER BY {POSITION}"
        )
    # Positions mean first-seen only while DuckDB keeps the read order.
    previous = ws.preserve_order
    ws.set_preserve_order(True)
    try:
        return ws.table("dedup", sql)
    finally:
        ws.set_preserve_order(previous)
