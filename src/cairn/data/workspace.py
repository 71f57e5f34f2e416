"""A DuckDB connection set up to spill to disk, and the report every step returns.

Steps compose: each reads one named relation and returns a new one, usually a *view*, so a
whole recipe becomes one plan that DuckDB optimises and runs once, when the splits are
written. Rows are stored in a table only where reading a relation twice would redo costly
work (an aggregate such as a dedupe, a window, parsing a CSV) and a step must see all rows
first, for a statistic such as quantile fences. Row counts learnt on the way (from a stored
table, from an aggregate a step runs anyway) are kept, so reports rarely need a count pass.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from cairn.data.sources import quote_identifier, row_count

# The hidden column an order-keeping dedupe adds: each kept row's first-seen position. Hash
# joins (a key-hash split, a value map) do not keep their probe side's order even with
# preserve_insertion_order, so every write of the rows sorts on it and then drops it.
POSITION = "_cairn_pos"

# Physical operators whose work a second read would repeat in full: aggregates, windows,
# sorts, and text parsing. Scans of tables and Parquet, filters, projections and hash joins
# against small tables stream cheaply and are recomputed instead of stored.
_COSTLY_OPERATORS = (
    "HASH_GROUP_BY",
    "PERFECT_HASH_GROUP_BY",
    "WINDOW",
    "STREAMING_WINDOW",
    "ORDER_BY",
    "TOP_N",
    "READ_CSV",
    "READ_CSV_AUTO",
    "READ_JSON",
    "READ_JSON_AUTO",
    "READ_NDJSON",
    "NESTED_LOOP_JOIN",
    "BLOCKWISE_NL_JOIN",
    "PIECEWISE_MERGE_JOIN",
)
_PARSERS = ("READ_CSV", "READ_CSV_AUTO", "READ_JSON", "READ_JSON_AUTO", "READ_NDJSON")
_CHEAP_PARSE_ROWS = 100_000
# A hash join whose build side is this large costs a full hash table per read.
_COSTLY_BUILD_ROWS = 1_000_000


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
    """One DuckDB database for a preparation run, spilling to `spill_dir` above `memory_limit`.

    `preserve_order` keeps rows in the order they were read through scans, filters,
    projections and writes, but not through hash joins (see `POSITION`); a recipe that
    does not care about order runs faster without.

    Every view must be deterministic: a view is re-run by each read of it, so one whose
    rows could differ between reads (a sample, `random()`, an order-dependent window)
    must be stored as a table instead.
    """

    def __init__(
        self,
        memory_limit: str | None = None,
        spill_dir: str | Path | None = None,
        preserve_order: bool = True,
    ):
        self._tmp = None
        if spill_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cairn-duckdb-")
            spill_dir = self._tmp.name
        self.con = duckdb.connect()
        self.con.execute(f"SET temp_directory = '{Path(spill_dir).as_posix()}'")
        self.con.execute("SET enable_progress_bar = false")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.preserve_order = preserve_order
        self.set_preserve_order(preserve_order)
        # Rehearsals set this: every step's plan then runs at once, so a mistake names its step.
        self.checking = False
        self._names = itertools.count(1)
        self._owned: set[str] = set()
        self._counts: dict[str, int] = {}
        self._same_rows: dict[str, str] = {}
        self._stored: dict[str, str] = {}
        # Plans are read with EXPLAIN (binding a CSV view sniffs the file), so answers are kept.
        self._costly: dict[str, bool] = {}
        self._reads: dict[str, set[str]] = {}

    def set_preserve_order(self, enabled: bool) -> None:
        """Keep rows in read order (or not) in every query from now on.

        Swapping a join's sides is also off while order matters, though hash joins still
        emit rows out of order over several threads; only an ORDER BY on `POSITION` holds.
        """
        self.preserve_order = enabled
        self.con.execute(f"SET preserve_insertion_order = {str(enabled).lower()}")
        disabled = "build_side_probe_side" if enabled else ""
        self.con.execute(f"SET disabled_optimizers = '{disabled}'")

    def memory_limit_bytes(self) -> int:
        """DuckDB's memory limit in bytes (it defaults to 80 % of the machine's memory)."""
        row = self.con.execute("SELECT current_setting('memory_limit')").fetchone()
        number, _, unit = str(row[0] if row else "").partition(" ")
        scale = {"B": 1, "bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
        scale |= {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
        try:
            return int(float(number) * scale.get(unit, 1))
        except ValueError:
            return 2**30

    def new_name(self, stem: str, table: bool = True) -> str:
        """A fresh name, so every step's output stays inspectable; tables may be released later."""
        name = f"_{stem}_{next(self._names)}"
        if table:
            self._owned.add(name)
        return name

    def view(self, stem: str, sql: str, rows_like: str | None = None) -> str:
        """A new view of `sql`; `rows_like` names a relation with exactly the same rows."""
        name = self.new_name(stem, table=False)
        self.con.execute(f"CREATE VIEW {quote_identifier(name)} AS {sql}")
        if rows_like is not None:
            self.same_rows(name, rows_like)
        return name

    def table(self, stem: str, sql: str, params: Any = None) -> str:
        """A new table holding the rows of `sql`; its row count is remembered."""
        name = self.new_name(stem)
        created = self.con.execute(f"CREATE TABLE {quote_identifier(name)} AS {sql}", params)
        written = created.fetchall()
        self._counts[name] = int(written[0][0]) if written else self.count(name)
        return name

    def materialize(self, relation: str) -> str:
        """A table holding the rows of `relation`, so later reads do not recompute it."""
        out = self.table("table", f"SELECT * FROM {quote_identifier(relation)}")
        self.note_count(relation, self._counts[out])
        return out

    def reusable(self, relation: str) -> str:
        """`relation`, or a stored copy of it when reading it twice would redo costly work.

        Steps that need a statistic over all rows before they can compose their view call
        this first and build on what it returns, so the costly work runs once.
        """
        if relation in self._stored and self._exists(self._stored[relation]):
            return self._stored[relation]
        if not self.costly(relation):
            return relation
        self._stored[relation] = self.materialize(relation)
        return self._stored[relation]

    def costly(self, relation: str) -> bool:
        """Whether reading `relation` runs an aggregate, window, sort or text parse."""
        if relation not in self._costly:
            self._costly[relation] = self._find_costly(relation)
        return self._costly[relation]

    def _find_costly(self, relation: str) -> bool:
        for node in self._plan(relation, optimized=True):
            name = str(node.get("name", ""))
            info = node.get("extra_info") or {}
            kind = name if name in _COSTLY_OPERATORS else str(info.get("Function", ""))
            if kind in _PARSERS and _estimate(node) < _CHEAP_PARSE_ROWS:
                continue  # a small lookup file parses in no time
            if kind in _COSTLY_OPERATORS:
                return True
            if name == "HASH_JOIN":
                children = node.get("children") or []
                if len(children) > 1 and _estimate(children[1]) > _COSTLY_BUILD_ROWS:
                    return True
        return False

    def tables_read(self, relation: str) -> set[str]:
        """Every table a read of `relation` scans, through any views (empty if unknown)."""
        if relation in self._reads:
            return self._reads[relation]
        tables = set()
        for node in self._plan(relation, optimized=False):
            table = (node.get("extra_info") or {}).get("Table")
            if table:
                tables.add(str(table).split(".")[-1])
        # Views and tables made here never change under their name, so the answer keeps.
        if relation.startswith("_"):
            self._reads[relation] = tables
        return tables

    def _plan(self, relation: str, optimized: bool) -> Iterator[dict[str, Any]]:
        """The nodes of DuckDB's physical plan for reading all of `relation`."""
        try:
            if not optimized:
                # Unoptimised, so a scan the optimiser would prune still shows as a dependency.
                self.con.execute("PRAGMA disable_optimizer")
            try:
                rows = self.con.execute(
                    f"EXPLAIN (FORMAT json) SELECT * FROM {quote_identifier(relation)}"
                ).fetchall()
            finally:
                if not optimized:
                    self.con.execute("PRAGMA enable_optimizer")
        except duckdb.Error:
            return
        stack: list[Any] = json.loads(rows[0][1]) if rows else []
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                yield node
                stack.extend(node.get("children") or [])

    def release(self, previous: str, current: str) -> None:
        """Drop the tables this workspace made that `previous` read and `current` no longer does.

        Steps chain views, so a stored table stays while a later view still reads it.
        """
        if previous == current or not self._owned:
            return
        keep = self.tables_read(current) | {current}
        if len(keep) == 1 and not self._exists(current):
            return  # cannot tell what `current` needs: keep everything
        for name in sorted(((self.tables_read(previous) | {previous}) & self._owned) - keep):
            if self._is_table(name):
                self._owned.discard(name)
                self.con.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")

    def _exists(self, relation: str) -> bool:
        rows = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = $1 "
            "UNION ALL SELECT count(*) FROM duckdb_views() WHERE view_name = $1",
            [relation],
        ).fetchall()
        return any(int(r[0]) for r in rows)

    def _is_table(self, relation: str) -> bool:
        rows = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = $1", [relation]
        ).fetchall()
        return bool(rows and rows[0][0])

    def note_count(self, relation: str, rows: int) -> None:
        """Remember that `relation` has `rows` rows (learnt from a pass that ran anyway)."""
        self._counts[relation] = int(rows)

    def same_rows(self, relation: str, like: str) -> None:
        """`relation` has exactly the rows of `like` (a projection of it)."""
        self._same_rows[relation] = like

    def known_count(self, relation: str) -> int | None:
        """The row count of `relation` if some pass has learnt it, else None."""
        seen = set()
        while relation not in self._counts and relation in self._same_rows:
            if relation in seen:
                return None
            seen.add(relation)
            relation = self._same_rows[relation]
        return self._counts.get(relation)

    def count(self, relation: str) -> int:
        """Rows of `relation`: remembered when known, else counted (and then remembered)."""
        known = self.known_count(relation)
        if known is None:
            known = row_count(self.con, relation)
            self._counts[relation] = known
        return known

    def register_frame(self, frame: pd.DataFrame, name: str | None = None) -> str:
        """Copy a pandas frame into a DuckDB table and return the table's name."""
        name = name or self.new_name("frame")
        self.con.register("_cairn_incoming", frame)
        self.con.execute(
            f"CREATE OR REPLACE TABLE {quote_identifier(name)} AS SELECT * FROM _cairn_incoming"
        )
        self.con.unregister("_cairn_incoming")
        self._counts[name] = len(frame)
        self._same_rows.pop(name, None)
        self._costly.pop(name, None)
        self._reads.pop(name, None)
        return name

    def frame(self, relation: str) -> pd.DataFrame:
        return self.con.execute(f"SELECT * FROM {quote_identifier(relation)}").df()

    def close(self) -> None:
        self.con.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _estimate(node: dict[str, Any]) -> int:
    """DuckDB's estimated row count of a plan node (0 when it gives none)."""
    try:
        return int(str((node.get("extra_info") or {}).get("Estimated Cardinality", "0")))
    except ValueError:
        return 0
