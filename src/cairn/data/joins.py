"""Joins on keys (with a many-to-one check) and unions with schema rationalisation."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cairn.data.sources import columns_of, fetch_one, quote_identifier
from cairn.data.workspace import StepReport, Workspace
from cairn.domain.errors import failed_precondition, invalid_field

JOIN_KINDS = ("inner", "left")


def normalize_column_name(name: str) -> str:
    """`Dep. Delay (min)` -> `dep_delay_min`: lower snake case, ASCII, no leading digit."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", ascii_name)
    snake = re.sub(r"[^0-9a-zA-Z]+", "_", ascii_name).strip("_").lower()
    if not snake:
        snake = "column"
    return f"c_{snake}" if snake[0].isdigit() else snake


def _key_pairs(on: str | Sequence[str] | Mapping[str, str]) -> list[tuple[str, str]]:
    if isinstance(on, str):
        return [(on, on)]
    if isinstance(on, Mapping):
        return [(str(left), str(right)) for left, right in on.items()]
    return [(str(key), str(key)) for key in on]


def join(
    ws: Workspace,
    left: str,
    right: str,
    on: str | Sequence[str] | Mapping[str, str],
    how: str = "left",
    many_to_one: bool = True,
    suffix: str | None = None,
    columns: Sequence[str] | None = None,
    lazy: bool = False,
) -> tuple[str, StepReport]:
    """Join `right` onto `left`; with `many_to_one`, refuse when a right key repeats.

    Right-hand columns that clash with left ones get `suffix` (default `_<right>`); the
    right-hand key columns are dropped because they equal the left ones.
    """
    if how not in JOIN_KINDS:
        raise invalid_field("join.how", f"unknown join {how!r}; use inner or left.")
    pairs = _key_pairs(on)
    left_columns, right_columns = columns_of(ws.con, left), columns_of(ws.con, right)
    for left_key, right_key in pairs:
        if left_key not in left_columns:
            raise invalid_field("join.on", f"{left!r} has no column {left_key!r}.")
        if right_key not in right_columns:
            raise invalid_field("join.on", f"{right!r} has no column {right_key!r}.")
    right_keys = ", ".join(quote_identifier(r) for _, r in pairs)
    if many_to_one:
        duplicate = fetch_one(
            ws.con,
            f"SELECT {right_keys}, count(*) AS n FROM {quote_identifier(right)} "
            f"WHERE {' AND '.join(f'{quote_identifier(r)} IS NOT NULL' for _, r in pairs)} "
            f"GROUP BY ALL HAVING n > 1 LIMIT 1",
        )
        if duplicate:
            raise failed_precondition(
                f"Joining {right!r} onto {left!r} is not many-to-one: key {duplicate[:-1]} "
                f"appears {duplicate[-1]} times in {right!r}. Deduplicate {right!r} first or "
                "set `many_to_one: false`."
            )
    suffix = suffix if suffix is not None else f"_{right}"
    dropped = {r for _, r in pairs}
    selected = [f"l.{quote_identifier(c)}" for c in left_columns]
    renamed: dict[str, str] = {}
    unknown = [c for c in columns or [] if c not in right_columns]
    if unknown:
        raise invalid_field("join.columns", f"{right!r} has no columns {unknown}.")
    for column in right_columns:
        if column in dropped or (columns is not None and column not in columns):
            continue
        alias = column + suffix if column in left_columns else column
        if alias != column:
            renamed[column] = alias
        selected.append(f"r.{quote_identifier(column)} AS {quote_identifier(alias)}")
    condition = " AND ".join(
        f"l.{quote_identifier(lk)} = r.{quote_identifier(rk)}" for lk, rk in pairs
    )
    # A lazy join is a view: chained joins then run as one query when materialised, and
    # counting its rows reads only the key columns.
    out = ws.new_name("joined", table=not lazy)
    ws.con.execute(
        f"CREATE {'VIEW' if lazy else 'TABLE'} {quote_identifier(out)} AS SELECT {', '.join(selected)} "
        f"FROM {quote_identifier(left)} l {how.upper()} JOIN {quote_identifier(right)} r "
        f"ON {condition}"
    )
    before = ws.count(left)
    after = before if how == "left" and many_to_one else ws.count(out)
    unmatched_sql = (
        f"SELECT count(*) FROM {quote_identifier(left)} l WHERE NOT EXISTS "
        f"(SELECT 1 FROM {quote_identifier(right)} r WHERE {condition})"
    )
    unmatched = fetch_one(ws.con, unmatched_sql)
    return out, StepReport(
        f"join {right}",
        before,
        after,
        {
            "how": how,
            "on": pairs,
            "unmatched_left_rows": int(unmatched[0]) if unmatched else 0,
            "renamed": renamed,
        },
    )


@dataclass
class UnionReport:
    """What schema rationalisation did and what it could not reconcile."""

    renamed: dict[str, dict[str, str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    unreconciled: dict[str, str] = field(default_factory=dict)


_NUMERIC_RANK = {
    "BOOLEAN": 0,
    "TINYINT": 1,
    "SMALLINT": 2,
    "INTEGER": 3,
    "BIGINT": 4,
    "HUGEINT": 5,
    "FLOAT": 6,
    "DOUBLE": 7,
}


def _unify(types: list[str]) -> str | None:
    """One type that holds every input type, or None when only text can hold them all."""
    distinct = set(types)
    if len(distinct) == 1:
        return types[0]
    if all(t in _NUMERIC_RANK for t in distinct):
        return max(distinct, key=lambda t: _NUMERIC_RANK[t])
    if all(t.startswith(("DECIMAL", *_NUMERIC_RANK)) for t in distinct):
        return "DOUBLE"
    if distinct <= {"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"}:
        return "TIMESTAMP"
    return None


def union(
    ws: Workspace,
    relations: Sequence[str],
    renames: Mapping[str, str] | None = None,
    normalize_names: bool = True,
    source_column: str | None = "_source",
) -> tuple[str, StepReport, UnionReport]:
    """Stack relations by column name after normalising names and applying `renames`.

    Types are unified to the widest common type; where one source has text that does not
    parse as the others' type, the column stays text and is listed in `unreconciled`.
    """
    renames = {
        normalize_column_name(k) if normalize_names else k: v for k, v in (renames or {}).items()
    }
    report = UnionReport()
    schemas: dict[str, dict[str, str]] = {}
    for relation in relations:
        mapped: dict[str, str] = {}
        for column, kind in columns_of(ws.con, relation).items():
            target = normalize_column_name(column) if normalize_names else column
            target = renames.get(target, renames.get(column, target))
            if target != column:
                report.renamed.setdefault(relation, {})[column] = target
            mapped[column] = target
            schemas.setdefault(target, {})[relation] = kind
        schemas.setdefault("\0order", {})  # keeps dict insertion order meaningful
        ws.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {quote_identifier('_u_' + relation)} AS SELECT "
            + ", ".join(
                f"{quote_identifier(c)} AS {quote_identifier(t)}" for c, t in mapped.items()
            )
            + f" FROM {quote_identifier(relation)}"
        )
    schemas.pop("\0order")
    final_types: dict[str, str] = {}
    for column, per_source in schemas.items():
        unified = _unify(list(per_source.values()))
        if unified is None:
            numeric = [t for t in per_source.values() if t != "VARCHAR"]
            common = _unify(numeric) if numeric else None
            if common and _all_text_casts(ws, column, per_source, common):
                unified = common
            else:
                unified = "VARCHAR"
                report.unreconciled[column] = ", ".join(
                    f"{source}: {kind}" for source, kind in per_source.items()
                )
        final_types[column] = unified
        missing = [r for r in relations if r not in per_source]
        if missing:
            report.missing[column] = missing
    report.types = final_types
    selects = []
    for relation in relations:
        parts = []
        for column, kind in final_types.items():
            if relation in schemas[column]:
                parts.append(
                    f"TRY_CAST({quote_identifier(column)} AS {kind}) AS {quote_identifier(column)}"
                )
            else:
                parts.append(f"CAST(NULL AS {kind}) AS {quote_identifier(column)}")
        if source_column:
            parts.append(f"'{relation}' AS {quote_identifier(source_column)}")
        selects.append(f"SELECT {', '.join(parts)} FROM {quote_identifier('_u_' + relation)}")
    out = ws.new_name("union")
    ws.con.execute(f"CREATE TABLE {quote_identifier(out)} AS " + " UNION ALL ".join(selects))
    before = sum(ws.count(r) for r in relations)
    step = StepReport(
        "union",
        before,
        ws.count(out),
        {
            "renamed": report.renamed,
            "missing_columns": report.missing,
            "unreconciled": report.unreconciled,
        },
    )
    return out, step, report


def _all_text_casts(ws: Workspace, column: str, per_source: Mapping[str, str], target: str) -> bool:
    """True when every non-null text value of `column` parses as `target`."""
    for relation, kind in per_source.items():
        if kind != "VARCHAR":
            continue
        failures = fetch_one(
            ws.con,
            f"SELECT count(*) FROM {quote_identifier('_u_' + relation)} "
            f"WHERE {quote_identifier(column)} IS NOT NULL "
            f"AND TRY_CAST({quote_identifier(column)} AS {target}) IS NULL",
        )
        if failures and failures[0]:
            return False
    return True
