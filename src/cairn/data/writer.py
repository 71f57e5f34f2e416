"""Write a query's rows to a CSV, Parquet or JSON Lines file with DuckDB's COPY.

One writer for `cairn data query -o`, `cairn data clean` and `cairn data split`:

- the format comes from the file's suffix, checked before any work is done;
- the rows go to a staging file first (next to the target when its folder exists, else in
  the system's temporary folder) and replace the target only once COPY has succeeded, so a
  failed query leaves no half-written file and no new folder, and a target that is also a
  source is read whole before it is replaced;
- the path reaches SQL as an escaped string literal, never spliced raw.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import duckdb

from cairn.domain.errors import invalid_field

COPY_FORMATS = {
    ".csv": "FORMAT csv, HEADER",
    ".parquet": "FORMAT parquet",
    ".jsonl": "FORMAT json",
    ".ndjson": "FORMAT json",
    ".json": "FORMAT json",
}


def copy_format(target: Path, field: str = "output") -> str:
    """The COPY options for `target`'s suffix; a clear error for any other suffix."""
    options = COPY_FORMATS.get(target.suffix.lower())
    if options is None:
        raise invalid_field(
            field, f"{target.name}: write to a .csv, .parquet or .jsonl file (JSON Lines)."
        )
    return options


def _literal(path: Path) -> str:
    return "'" + path.as_posix().replace("'", "''") + "'"


class OutputFile:
    """A file the rows of one query will replace; `staging` is where COPY writes first
    (a caller that locks DuckDB's file access allows exactly that path)."""

    def __init__(self, target: Path, field: str = "output") -> None:
        self.target = target.absolute()
        self.options = copy_format(self.target, field)
        folder = self.target.parent if self.target.parent.is_dir() else None
        staging_name = f".{self.target.stem}.{uuid.uuid4().hex[:12]}.cairn-tmp{self.target.suffix}"
        self.staging = Path(folder or tempfile.gettempdir()) / staging_name

    def write(self, con: duckdb.DuckDBPyConnection, select_sql: str) -> int:
        """Run `select_sql` into the target; the number of rows written."""
        try:
            row = con.execute(
                f"COPY ({select_sql}\n) TO {_literal(self.staging)} ({self.options})"
            ).fetchone()
            self.target.parent.mkdir(parents=True, exist_ok=True)
            if self.staging.parent == self.target.parent:
                os.replace(self.staging, self.target)
            else:
                shutil.move(self.staging, self.target)
        finally:
            self.staging.unlink(missing_ok=True)
        return int(row[0]) if row else 0


def write_query(
    con: duckdb.DuckDBPyConnection, select_sql: str, target: Path, field: str = "output"
) -> int:
    """Write the rows of `select_sql` to `target` (format from its suffix); rows written."""
    return OutputFile(target, field).write(con, select_sql)
