"""Checks shared by the cleaning steps: columns exist and have the kind a step needs."""

from __future__ import annotations

from collections.abc import Sequence

from cairn.data.sources import columns_of
from cairn.data.workspace import POSITION, Workspace
from cairn.domain.errors import invalid_field

NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
)


def require_columns(
    ws: Workspace, relation: str, columns: Sequence[str], step: str, numeric: bool = False
) -> dict[str, str]:
    """Column types of `relation`, after checking that `columns` exist (and are numeric).

    The hidden position column is left out: it is no data for a step to read.
    """
    types = {c: t for c, t in columns_of(ws.con, relation).items() if c != POSITION}
    for column in columns:
        if column not in types:
            raise invalid_field(
                f"{step}.columns",
                f"no column {column!r}; the data has {', '.join(types)}.",
            )
        if numeric and not is_numeric(types[column]):
            raise invalid_field(
                f"{step}.columns", f"column {column!r} is {types[column]}, not numeric."
            )
    return types


def is_numeric(duckdb_type: str) -> bool:
    return duckdb_type.startswith(NUMERIC_TYPES)
