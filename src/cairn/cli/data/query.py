"""`cairn data query SOURCE... SQL`: DuckDB SQL over named sources, nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from cairn.cli.data._common import console, local_path, reported_errors
from cairn.cli.options import CairnCommand, global_flags

_SCREEN_ROWS = 100


@click.command(cls=CairnCommand)
@click.argument("arguments", nargs=-1, required=True, metavar="SOURCE... SQL")
@click.option(
    "-o",
    "--output",
    help="Write the result to this file instead of printing it (.csv, .parquet or .jsonl; "
    "path or gs://).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    help=f"At most this many rows [default: all rows to -o, {_SCREEN_ROWS} on screen].",
)
def query(arguments: tuple[str, ...], output: str | None, limit: int | None) -> None:
    """Run one DuckDB SQL query over SOURCEs and print the result or write it to a file.

    Each SOURCE is a table named after it: a CSV, Parquet or JSON Lines file (or a
    gs://BUCKET/PATH in the local buckets) is named after its file stem made an identifier
    (`house-sales.csv` -> house_sales), a database table is written URL#TABLE
    (`sqlite:///shop.db#sales`, `postgresql://user@host/db#public.sales`) and is named after
    the table. Write NAME=SOURCE to choose the name. The last argument is the SQL.

    \b
    Only the named sources are reachable. After they are loaded, DuckDB's external access
    is switched off and its configuration locked: the SQL can read the sources' own files
    (a glob such as 'parts/*.csv' is expanded first, and exactly the files it matched stay
    readable, through the source's table or by name) and nothing else: no other files
    (read_csv('...'), read_text, 'file.csv' in FROM, glob), no ATTACH, COPY, EXPORT,
    INSTALL or LOAD, no SET; only one SELECT-like statement (SELECT, WITH, FROM, VALUES,
    DESCRIBE, SUMMARIZE) runs. Use -o to write a file (an existing one is replaced once
    the query succeeds, even when it is also a SOURCE). A SQLite file is opened read-only.

    \b
    Examples:
      cairn data query sales.csv "SELECT city, avg(price) FROM sales GROUP BY city"
      cairn data query flights.parquet planes=planes.csv \\
          "SELECT p.manufacturer, count(*) n FROM flights f JOIN planes p USING (tailnum)
           GROUP BY 1 ORDER BY n DESC" --limit 10
      cairn data query 'sqlite:///shop.db#orders' "FROM orders WHERE total > 100" -o big.parquet
      cairn data query sales.csv "SUMMARIZE sales" --format json
    """
    from cairn.data.query import QuerySession, parse_source

    if len(arguments) < 2:
        raise click.UsageError("give at least one SOURCE and then the SQL.")
    *source_args, sql = arguments
    target = local_path(output) if output else None
    with reported_errors():
        sources = [parse_source(a, local_path) for a in source_args]
        with QuerySession(sources, target) as session:
            if target is not None:
                written = session.write(sql, limit)
                console.print(_rows(written))
                click.echo(f"output: {target}")
                return
            result = session.run(sql, _SCREEN_ROWS if limit is None else limit)
    _show(result, limit)


def _show(result: object, limit: int | None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from cairn.cli.output import Column, Printer
    from cairn.data.query import QueryResult, plain_value

    assert isinstance(result, QueryResult)
    fmt = global_flags().format
    if fmt:
        docs = [
            {c: plain_value(v) for c, v in zip(result.columns, row, strict=True)}
            for row in result.rows
        ]
        if fmt == "json":  # keys in the SELECT's order (the Printer sorts them)
            click.echo(json.dumps(docs, indent=2, ensure_ascii=False, allow_nan=False))
        else:
            columns = [Column(c.upper(), _reader(c)) for c in result.columns]
            Printer(fmt).value(docs, columns)
    else:
        # Cells and headers as Text: data such as '[red]' is shown as written, not as markup.
        table = Table(show_edge=False, header_style="bold")
        for name in result.columns:
            table.add_column(Text(name))
        for row in result.rows:
            table.add_row(*(Text("NULL" if v is None else str(v)) for v in row))
        out = Console(soft_wrap=True)
        if not out.is_terminal:
            # A pipe or a file gets whole cells: no width to wrap at.
            out = Console(width=max(80, out.measure(table).maximum), soft_wrap=True)
        out.print(table)
    if result.truncated:
        more = "--limit N for more" if limit is None else "the limit was reached"
        console.print(f"showing the first {len(result.rows)} rows ({more}, or -o FILE)")
    else:
        console.print(_rows(len(result.rows)))


def _reader(column: str) -> Callable[[dict[str, Any]], Any]:
    return lambda doc: doc.get(column)


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"
