"""A DuckDB connection set up to spill to disk, and the report every step returns.

Each step reads one named relation and writes a new table, so the recipe runner can chain
steps, count rows before and after, and DuckDB keeps the data out of Python's memory.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from cairn.data.sources import quote_identifier, row_count


@dataclass
class StepReport:
    """What one step did: rows before/after and step-specific details for the HTML report."""

    step: str
    rows_before: int
    rows_after: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_removed(self) -> int:
        return self.rows_before - self.rows_after

    def summary(self) -> str:
        return f"{self.step}: {self.rows_before} -> {self.rows_after} rows"


class Workspace:
    """One DuckDB database for a preparation run, spilling to `spill_dir` above `memory_limit`."""

    def __init__(self, memory_limit: str | None = None, spill_dir: str | Path | None = None):
        self._tmp = None
        if spill_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cairn-duckdb-")
            spill_dir = self._tmp.name
        self.con = duckdb.connect()
        self.con.execute(f"SET temp_directory = '{Path(spill_dir).as_posix()}'")
        self.con.execute("SET preserve_insertion_order = true")
        self.con.execute("SET enable_progress_bar = false")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self._names = itertools.count(1)
        self._owned: set[str] = set()

    def new_name(self, stem: str, table: bool = True) -> str:
        """A fresh name, so every step's output stays inspectable; tables may be released later."""
        name = f"_{stem}_{next(self._names)}"
        if table:
            self._owned.add(name)
        return name

    def materialize(self, relation: str) -> str:
        """A table holding the rows of a view, so later steps do not recompute it."""
        out = self.new_name("table")
        self.con.execute(
            f"CREATE TABLE {quote_identifier(out)} AS SELECT * FROM {quote_identifier(relation)}"
        )
        return out

    def release(self, previous: str, current: str) -> None:
        """Drop `previous` once a step has turned it into `current`, if this workspace made it.

        Intermediate tables would otherwise hold a full copy of the data per step.
        """
        if previous != current and previous in self._owned:
            self._owned.discard(previous)
            self.con.execute(f"DROP TABLE IF EXISTS {quote_identifier(previous)}")

    def register_frame(self, frame: pd.DataFrame, name: str | None = None) -> str:
        """Copy a pandas frame into a DuckDB table and return the table's name."""
        name = name or self.new_name("frame")
        self.con.register("_cairn_incoming", frame)
        self.con.execute(
            f"CREATE OR REPLACE TABLE {quote_identifier(name)} AS SELECT * FROM _cairn_incoming"
        )
        self.con.unregister("_cairn_incoming")
        return name

    def frame(self, relation: str) -> pd.DataFrame:
        return self.con.execute(f"SELECT * FROM {quote_identifier(relation)}").df()

    def count(self, relation: str) -> int:
        return row_count(self.con, relation)

    def close(self) -> None:
        self.con.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
