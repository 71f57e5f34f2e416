"""DuckDB SQL over named sources, with nothing else reachable; and the SQL/shell spelling that
the profile report uses to show each finding's query.

A query runs on a connection where each source is a view or table named after it. Once the
sources are loaded, DuckDB's external access is switched off (`enable_external_access=false`,
then `lock_configuration=true`): only the sources' own files (a glob expanded first to the
files it matches) and the output's staging file (cairn.data.writer) stay on the allowed
list, so `read_csv('/etc/passwd')`, `ATTACH`, `COPY`, `INSTALL`/`LOAD` and `SET` are refused
by DuckDB itself. The statement check before that only exists to explain a refusal in plain
words.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import glob
import math
import re
import shlex
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from cairn.data.sources import SourceSpec, load_source, quote_identifier
from cairn.data.workspace import Workspace
from cairn.data.writer import OutputFile
from cairn.domain.errors import invalid_field

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class QuerySource:
    """One SOURCE argument: the table name the SQL uses and where its rows come from."""

    name: str
    spec: SourceSpec


@dataclass
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool  # more rows existed than were fetched


def table_name_for(text: str) -> str:
    """A file stem or table made an identifier: `2024 sales.csv` -> `_2024_sales`."""
    name = re.sub(r"\W+", "_", text).strip("_") or "source"
    return f"_{name}" if name[0].isdigit() else name


def default_table_name(path: str) -> str:
    """The table a file source is named after: its stem, or its folder's name for a glob
    in the file name (`parts/*.csv` -> parts)."""
    location = Path(path)
    stem = location.name.split(".", 1)[0] if "*" not in location.name else location.parent.name
    return table_name_for(stem)


def parse_source(argument: str, resolve_path: Callable[[str], Path] | None = None) -> QuerySource:
    """`[NAME=]PATH` or `[NAME=]URL#TABLE` -> a QuerySource.

    `resolve_path` maps a path argument (such as gs://bucket/x.csv) to a local path; the
    default keeps it as written. A database URL needs `#TABLE`.
    """
    resolve: Callable[[str], Path] = resolve_path or Path
    name: str | None = None
    target = argument
    head, sep, tail = argument.partition("=")
    # `year=2024/part.parquet` is a path when the whole argument names an existing file.
    if sep and _NAME.match(head) and tail and not Path(argument).exists():
        name, target = head, tail
    if "://" in target and not target.startswith(_FILE_SCHEMES):
        url, hash_sign, table = target.partition("#")
        if not hash_sign or not table:
            raise invalid_field(
                "source",
                f"{argument}: say which table of the database to read: {url}#TABLE.",
            )
        spec_name = name or table_name_for(table.rsplit(".", 1)[-1])
        return QuerySource(
            spec_name,
            SourceSpec(name=spec_name, url=_read_only(url), query=_select_all(url, table)),
        )
    path = Path(resolve(target))
    if not any(ch in str(path) for ch in "*?["):
        if not path.exists():
            raise invalid_field("source", f"{target} does not exist.")
    elif not any(Path(f).is_file() for f in glob.iglob(str(path), recursive=True)):
        raise invalid_field("source", f"{target} matches no file.")
    spec_name = name or default_table_name(str(path))
    return QuerySource(spec_name, SourceSpec(name=spec_name, path=str(path.absolute())))


_FILE_SCHEMES = ("gs://", "s3://", "http://", "https://")


def _read_only(url: str) -> str:
    """A SQLite URL opened read-only, so a mistyped path is an error, not a new empty file."""
    if not url.startswith("sqlite:///"):
        return url
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file():
        raise invalid_field("source", f"{url}: no SQLite file at {path}.")
    return f"sqlite:///file:{path.absolute().as_posix()}?mode=ro&uri=true"


def _select_all(url: str, table: str) -> str:
    """SELECT * from `schema.table`, each part quoted the way the database's dialect quotes."""
    import sqlalchemy as sa

    try:
        preparer = sa.engine.make_url(url).get_dialect()().identifier_preparer
    except Exception as error:  # noqa: BLE001 - SQLAlchemy raises several types for bad URLs
        raise invalid_field("source", f"cannot use {url!r}: {error}") from None
    return "SELECT * FROM " + ".".join(preparer.quote_identifier(p) for p in table.split("."))


def check_statement(sql: str) -> str:
    """The one read-only statement in `sql` (without a trailing `;`), else a clear refusal."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise invalid_field("sql", f"the SQL does not parse: {error}") from None
    if len(statements) != 1:
        raise invalid_field(
            "sql", f"give exactly one SELECT statement, not {len(statements)} statements."
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        word = str(kind).rsplit(".", 1)[-1]
        raise invalid_field(
            "sql",
            f"only queries (SELECT, WITH, FROM, VALUES, DESCRIBE, SUMMARIZE) run here, "
            f"not {word}: ATTACH, COPY, INSTALL, LOAD, SET, PRAGMA and changes to tables "
            "are refused. Use -o FILE to write the result.",
        )
    return _without_trailing_semicolon(statements[0].query)


def _without_trailing_semicolon(sql: str) -> str:
    """The statement up to its last token that is not a comment, without a final `;`, so it
    can be wrapped (`SELECT 1; -- note` -> `SELECT 1`)."""
    tokens = duckdb.tokenize(sql)
    comment = duckdb.token_type.comment
    starts = [(start, kind) for start, kind in tokens]
    while starts and starts[-1][1] == comment:
        starts.pop()
    if not starts:
        return sql.strip()
    end = len(sql)
    for start, _ in reversed(tokens):
        if start <= starts[-1][0]:
            break
        end = start
    body = sql[:end].rstrip()
    return body[:-1].rstrip() if body.endswith(";") else body


class QuerySession:
    """A workspace holding the named sources, locked so the SQL reaches nothing else."""

    def __init__(self, sources: Sequence[QuerySource], output: Path | None = None) -> None:
        names = [s.name for s in sources]
        for name in names:
            if names.count(name) > 1:
                raise invalid_field(
                    "source",
                    f"two sources are named {name!r}; name one of them: other={name}.csv.",
                )
        self.sources = list(sources)
        # The suffix is checked before any source is read.
        self.output = OutputFile(output) if output is not None else None
        self.files: list[str] = []  # every file the sources read, globs expanded
        self.ws = Workspace()
        try:
            for source in self.sources:
                load_source(self.ws.con, source.spec)
                if source.spec.path:
                    self.files += self._pin_files(source)
            self._lock()
        except BaseException:
            self.ws.close()
            raise

    def _pin_files(self, source: QuerySource) -> list[str]:
        """The source's files; a glob's view is rewritten to read exactly the files it
        matches now, since DuckDB cannot expand a glob once file access is locked (and
        allowing the glob's folder would open every file below it)."""
        path = str(source.spec.path)
        if not any(ch in path for ch in "*?["):
            return [path]
        files = sorted(f for f in glob.glob(path, recursive=True) if Path(f).is_file())
        if not files:
            raise invalid_field("source", f"{path} matches no file.")
        con = self.ws.con
        row = con.execute(
            "SELECT sql FROM duckdb_views() WHERE view_name = ?", [source.spec.name]
        ).fetchone()
        pattern = sql_text(path)
        if not row or pattern not in str(row[0]):
            raise invalid_field("source", f"{path}: cannot pin the files this glob matches.")
        listed = "[" + ", ".join(sql_text(f) for f in files) + "]"
        definition = str(row[0]).replace(pattern, listed, 1).rstrip().rstrip(";")
        con.execute(definition.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
        return files

    def _lock(self) -> None:
        paths = list(self.files)
        if self.output is not None:
            paths.append(str(self.output.staging))
        con = self.ws.con
        if paths:
            con.execute(f"SET allowed_paths = [{', '.join(map(sql_text, paths))}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")

    def run(self, sql: str, limit: int | None = None) -> QueryResult:
        """Rows of `sql` (at most `limit`; `truncated` says whether more existed)."""
        statement = self._wrapped(sql, None if limit is None else limit + 1)
        cursor = self._execute(statement)
        columns = [d[0] for d in cursor.description or []]
        types = [str(d[1]) for d in cursor.description or []]
        rows = cursor.fetchall()
        truncated = limit is not None and len(rows) > limit
        return QueryResult(columns, types, rows[:limit] if truncated else rows, truncated)

    def write(self, sql: str, limit: int | None = None) -> int:
        """Write the rows of `sql` to the output file; return how many rows were written."""
        assert self.output is not None
        statement = self._wrapped(sql, limit)
        try:
            return self.output.write(self.ws.con, statement)
        except duckdb.Error as error:
            raise self._explained(error) from None

    def _wrapped(self, sql: str, limit: int | None) -> str:
        body = check_statement(sql)
        return (
            f"SELECT * FROM ({body}\n) AS result LIMIT {int(limit)}" if limit is not None else body
        )

    def _execute(self, statement: str) -> duckdb.DuckDBPyConnection:
        try:
            return self.ws.con.execute(statement)
        except duckdb.Error as error:
            raise self._explained(error) from None

    def _explained(self, error: duckdb.Error) -> Exception:
        if isinstance(error, duckdb.PermissionException):
            tables = ", ".join(s.name for s in self.sources)
            return invalid_field(
                "sql",
                f"only the named sources can be read (tables: {tables}); DuckDB's file "
                f"functions, paths in FROM and ATTACH are refused ({_first_line(error)}).",
            )
        return invalid_field("sql", f"{_first_line(error)}")

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> QuerySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def plain_value(value: Any) -> Any:
    """A result cell as JSON can carry it (times as ISO text, decimals as numbers, NaN and
    infinities as null: JSON has no spelling for them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID | dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    return value


# -- SQL and shell spelling for the report's reproducible queries ------------------------------


@functools.cache
def _reserved_words() -> frozenset[str]:
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category <> 'unreserved'"
        ).fetchall()
    finally:
        con.close()
    return frozenset(str(r[0]).lower() for r in rows)


def sql_name(name: str) -> str:
    """An identifier as a person would write it: bare when it can be, else quoted."""
    if _PLAIN.match(name) and name not in _reserved_words():
        return name
    return quote_identifier(name)


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def shell_word(text: str) -> str:
    """One shell word; SQL reads better in double quotes when nothing in it needs escaping."""
    if text and not any(ch in text for ch in '"$`\\!'):
        return f'"{text}"' if not re.fullmatch(r"[\w@%+=:,./-]+", text) else text
    return shlex.quote(text)


def query_command(sources: Sequence[str], sql: str) -> str:
    """The `cairn data query` command line that runs `sql` over `sources`."""
    return " ".join(["cairn data query", *(shlex.quote(s) for s in sources), shell_word(sql)])
