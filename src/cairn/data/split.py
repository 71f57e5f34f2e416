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
from typing import Any

import pandas as pd

from cairn.data.cleaning._columns import require_columns
from cairn.data.sources import quote_identifier
from cairn.data.workspace import StepReport, Workspace
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
) -> tuple[str, StepReport]:
    """Add a `_split` column (train/validation/test) to `relation`; report each split's balance."""
    fractions = fractions or SplitFractions()
    if method not in METHODS:
        raise invalid_field("split.method", f"unknown method {method!r}; use {', '.join(METHODS)}.")
    types = require_columns(ws, relation, [c for c in (label, key) if c], "split")
    if method == "stratified" and not label:
        raise invalid_field("split.label", "a stratified split needs `label:`.")
    if method == "hash" and not key:
        raise invalid_field("split.key", "a hash split needs `key:` (a column).")
    source = quote_identifier(relation)
    row_hash = f"hash({', '.join(quote_identifier(c) for c in types)}, {int(seed)})"
    if method == "hash":
        uniform = f"(md5_number(CAST({quote_identifier(key or '')} AS VARCHAR))::DOUBLE / 2::DOUBLE ^ 128)"
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
    out = ws.new_name("split")
    ws.con.execute(f"CREATE TABLE {quote_identifier(out)} AS {sql}")
    sizes = dict(
        ws.con.execute(
            f"SELECT {SPLIT_COLUMN}, count(*) FROM {quote_identifier(out)} GROUP BY ALL"
        ).fetchall()
    )
    details: dict[str, Any] = {
        "method": method,
        "seed": seed,
        "fractions": {
            "train": fractions.train,
            "validation": fractions.validation,
            "test": fractions.test,
        },
        "sizes": {s: int(sizes.get(s, 0)) for s in SPLITS},
    }
    if label:
        details["class_balance"] = class_balance(ws, out, label)
    total = ws.count(relation)
    return out, StepReport(f"split ({method})", total, ws.count(out), details)


def class_balance(ws: Workspace, relation: str, label: str) -> dict[str, dict[str, float]]:
    """Share of each label value within each split."""
    q = quote_identifier(label)
    rows = ws.con.execute(
        f"SELECT s, v, n * 1.0 / sum(n) OVER (PARTITION BY s) FROM ("
        f"SELECT {SPLIT_COLUMN} AS s, CAST({q} AS VARCHAR) AS v, count(*) AS n "
        f"FROM {quote_identifier(relation)} GROUP BY ALL) ORDER BY 1, 2"
    ).fetchall()
    balance: dict[str, dict[str, float]] = {}
    for split_name, value, share in rows:
        balance.setdefault(split_name, {})[str(value)] = round(float(share), 4)
    return balance


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
        out, _ = split(ws, view, shares, method, label, key, seed)
        labelled = ws.con.execute(
            f"SELECT _cairn_row, {SPLIT_COLUMN} FROM {quote_identifier(out)}"
        ).df()
    assignment = labelled.set_index("_cairn_row")[SPLIT_COLUMN].sort_index().to_numpy()
    return {name: frame.loc[assignment == name] for name in SPLITS}
