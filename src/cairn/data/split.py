"""Train/validation/test splits: random, stratified by the label, or by a hash of a key.

Random and stratified splits hash each row's content with the seed instead of drawing
random numbers, so a split is reproducible whatever order DuckDB's threads read rows in.
Key-hash splits use MD5 of the key alone: an instance lands in the same split in every run
and every version of the data, and `hash_fraction` gives the same answer in Python.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cairn.data.cleaning._columns import require_columns
from cairn.data.sources import columns_of, fetch_one, quote_identifier
from cairn.data.workspace import POSITION, StepReport, Workspace
from cairn.data.writer import OutputFile
from cairn.domain.errors import invalid_field

SPLITS = ("train", "validation", "test")
METHODS = ("random", "stratified", "hash")
SPLIT_COLUMN = "_split"


@dataclass(frozen=True)
class SplitFractions:
    """Shares of the rows for each split; they must add up to one."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], enforce_order: bool = True) -> SplitFractions:
        unknown = set(values) - set(SPLITS)
        if unknown:
            raise invalid_field(
                "split.fractions", f"unknown splits {sorted(unknown)}; use train, validation, test."
            )
        fractions = cls(**{k: float(v) for k, v in values.items()}) if values else cls()
        fractions.check(enforce_order)
        return fractions

    def check(self, enforce_order: bool = True) -> None:
        shares = (self.train, self.validation, self.test)
        if any(s < 0 for s in shares) or abs(sum(shares) - 1.0) > 1e-9:
            raise invalid_field(
                "split.fractions", f"fractions {shares} must be >= 0 and add up to 1."
            )
        if enforce_order and not (self.train > self.validation >= self.test):
            raise invalid_field(
                "split.fractions",
                f"expected train > validation >= test, got {shares}; "
                "set `enforce_order: false` to allow other sizes.",
            )

    def bucket_sql(self, uniform: str) -> str:
        """SQL mapping a uniform [0, 1) expression to the split name."""
        cut = self.train + self.validation
        return (
            f"CASE WHEN {uniform} < {self.train!r} THEN 'train' "
            f"WHEN {uniform} < {cut!r} THEN 'validation' ELSE 'test' END"
        )


def hash_fraction(key: Any) -> float:
    """Where `key` falls in [0, 1): MD5 of its text, the same number DuckDB's md5_number gives."""
    digest = hashlib.md5(str(key).encode("utf-8")).digest()  # noqa: S324 - not for security
    return int.from_bytes(digest, "little") / 2**128


def split(
    ws: Workspace,
    relation: str,
    fractions: SplitFractions | None = None,
    method: str = "random",
    label: str | None = None,
    key: str | None = None,
    seed: int = 0,
    measure: bool = True,
) -> tuple[str, StepReport]:
    """A view of `relation` with a `_split` column (train/validation/test).

    With `measure`, the report gives each split's size and class balance (one pass); a
    caller that writes the splits anyway can fill them in from that write instead.
    """
    fractions = fractions or SplitFractions()
    if method not in METHODS:
        raise invalid_field("split.method", f"unknown method {method!r}; use {', '.join(METHODS)}.")
    types = require_columns(ws, relation, [c for c in (label, key) if c], "split")
    if method == "stratified" and not label:
        raise invalid_field("split.label", "a stratified split needs `label:`.")
    if method == "hash" and not key:
        raise invalid_field("split.key", "a hash split needs `key:` (a column).")
    if measure:
        # Measuring reads the rows once more than writing them will: parse a CSV only once.
        relation = ws.reusable(relation)
    source = quote_identifier(relation)
    row_hash = f"hash({', '.join(quote_identifier(c) for c in types)}, {int(seed)})"
    if method == "hash":
        q = quote_identifier(key or "")
        buckets = _key_buckets(ws, relation, key or "", types[key or ""], fractions)
        if buckets:
            # A key missing from the table is NULL, which the bucket rule sends to test.
            sql = (
                f"SELECT t.*, coalesce(k._bucket, 'test') AS {SPLIT_COLUMN} FROM {source} t "
                f"LEFT JOIN {quote_identifier(buckets)} k ON t.{q} = k._key"
            )
        else:
            uniform = f"(md5_number(CAST({q} AS VARCHAR))::DOUBLE / 2::DOUBLE ^ 128)"
            sql = f"SELECT *, {fractions.bucket_sql(uniform)} AS {SPLIT_COLUMN} FROM {source}"
    elif method == "random":
        uniform = f"({row_hash}::DOUBLE / 2::DOUBLE ^ 64)"
        sql = f"SELECT *, {fractions.bucket_sql(uniform)} AS {SPLIT_COLUMN} FROM {source}"
    else:
        q = quote_identifier(label or "")
        ranked = (
            f"SELECT *, (row_number() OVER (PARTITION BY {q} ORDER BY _cairn_h) - 0.5) "
            f"/ count(*) OVER (PARTITION BY {q}) AS _cairn_u "
            f"FROM (SELECT *, {row_hash} AS _cairn_h FROM {source})"
        )
        sql = (
            f"SELECT * EXCLUDE (_cairn_h, _cairn_u), {fractions.bucket_sql('_cairn_u')} "
            f"AS {SPLIT_COLUMN} FROM ({ranked})"
        )
    # A row-wise split is a projection of its input; a stratified one ranks within each class.
    out = ws.view("split", sql, rows_like=relation)
    total = ws.count(relation)
    details: dict[str, Any] = {
        "method": method,
        "seed": seed,
        "fractions": {
            "train": fractions.train,
            "validation": fractions.validation,
            "test": fractions.test,
        },
    }
    if measure:
        details.update(split_sizes(ws, out, label))
    return out, StepReport(f"split ({method})", total, total, details)


def _key_buckets(
    ws: Workspace, relation: str, key: str, kind: str, fractions: SplitFractions
) -> str | None:
    """A table of each distinct key's split when keys repeat, else None.

    MD5 is the costliest part of a hash split; keys that repeat (a flight number, a
    customer) need it once per key, and a hash join hands each row its key's split.
    Floating-point keys are left per row: -0.0 and 0.0 join as one key but hash apart.
    """
    if kind.startswith(("FLOAT", "DOUBLE", "REAL")) or ws.costly(relation):
        return None
    q = quote_identifier(key)
    row = fetch_one(
        ws.con, f"SELECT count(*), approx_count_distinct({q}) FROM {quote_identifier(relation)}"
    )
    rows, keys = (int(row[0]), int(row[1] or 0)) if row else (0, 0)
    ws.note_count(relation, rows)
    if keys * 4 > rows:
        return None
    uniform = "(md5_number(CAST(_key AS VARCHAR))::DOUBLE / 2::DOUBLE ^ 128)"
    return ws.table(
        "split_keys",
        f"SELECT _key, {fractions.bucket_sql(uniform)} AS _bucket FROM "
        f"(SELECT DISTINCT {q} AS _key FROM {quote_identifier(relation)} WHERE {q} IS NOT NULL)",
    )


def split_sizes(ws: Workspace, relation: str, label: str | None) -> dict[str, Any]:
    """`sizes` of each split and, with a label, its `class_balance`: one aggregate."""
    value = f"CAST({quote_identifier(label)} AS VARCHAR)" if label else "NULL"
    rows = ws.con.execute(
        f"SELECT {SPLIT_COLUMN}, {value} AS v, count(*) FROM {quote_identifier(relation)} "
        "GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()
    sizes = dict.fromkeys(SPLITS, 0)
    for split_name, _value, n in rows:
        sizes[split_name] += int(n)
    found: dict[str, Any] = {"sizes": sizes}
    if label:
        balance: dict[str, dict[str, float]] = {}
        for split_name, value_text, n in rows:
            balance.setdefault(split_name, {})[str(value_text)] = round(
                int(n) / sizes[split_name], 4
            )
        found["class_balance"] = balance
    return found


def class_balance(ws: Workspace, relation: str, label: str) -> dict[str, dict[str, float]]:
    """Share of each label value within each split."""
    balance: dict[str, dict[str, float]] = split_sizes(ws, relation, label)["class_balance"]
    return balance


def ordered_rows(ws: Workspace, relation: str, where: str = "", keep_split: bool = False) -> str:
    """SELECT of `relation`'s rows filtered by `where`, without the split column unless
    `keep_split`; rows that carry `POSITION` come back in that order and without it."""
    columns = columns_of(ws.con, relation)
    hidden = [c for c in (POSITION, None if keep_split else SPLIT_COLUMN) if c in columns]
    sql = f"SELECT * FROM {quote_identifier(relation)}"
    if hidden:
        sql = sql.replace("*", f"* EXCLUDE ({', '.join(hidden)})", 1)
    if where:
        sql += f" WHERE {where}"
    return sql + (f" ORDER BY {POSITION}" if POSITION in columns else "")


def write_splits(
    ws: Workspace, relation: str, target: Path, fmt: str
) -> tuple[dict[str, Path], dict[str, int]]:
    """Write `relation`'s splits to target/{train,validation,test}.<fmt>; return paths, sizes.

    One COPY per split, each with the split's filter in its plan: DuckDB pushes it down (with
    a key-hash split, into the small key table), so each COPY encodes only its own rows. On
    10 million flights this took half the time and memory of one partitioned COPY, whose
    per-partition buffers flush in small pieces. A relation that is costly to read (a window,
    a sort, a parse) is stored first, so the three reads do not redo that work.
    """
    source = ws.reusable(relation)
    outputs = {name: OutputFile(target / f"{name}.{fmt}", "output.format") for name in SPLITS}
    sizes = {
        name: output.write(ws.con, ordered_rows(ws, source, f"{SPLIT_COLUMN} = '{name}'"))
        for name, output in outputs.items()
    }
    return {name: target / f"{name}.{fmt}" for name in SPLITS}, sizes


def split_frame(
    frame: pd.DataFrame,
    fractions: Mapping[str, float] | None = None,
    method: str = "random",
    label: str | None = None,
    key: str | None = None,
    seed: int = 0,
    enforce_order: bool = True,
) -> dict[str, pd.DataFrame]:
    """The same split for an in-memory frame: {'train': ..., 'validation': ..., 'test': ...}."""
    with Workspace() as ws:
        table = ws.register_frame(frame.reset_index(drop=True).assign(_cairn_row=range(len(frame))))
        shares = SplitFractions.from_mapping(fractions or {}, enforce_order)
        columns = [c for c in frame.columns]
        view = ws.new_name("view")
        ws.con.execute(
            f"CREATE VIEW {view} AS SELECT {', '.join(quote_identifier(c) for c in columns)}, "
            f"_cairn_row FROM {quote_identifier(table)}"
        )
        # The row number takes part in the row hash so identical rows may still be spread.
        out, _ = split(ws, view, shares, method, label, key, seed, measure=False)
        labelled = ws.con.execute(
            f"SELECT _cairn_row, {SPLIT_COLUMN} FROM {quote_identifier(out)}"
        ).df()
    assignment = labelled.set_index("_cairn_row")[SPLIT_COLUMN].sort_index().to_numpy()
    return {name: frame.loc[assignment == name] for name in SPLITS}
