"""`cairn data profile SOURCE`: an HTML report of what is in a dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cairn.cli.data._common import (
    build_source,
    local_path,
    progress_status,
    reported_errors,
    source_spec_options,
)
from cairn.cli.options import CairnCommand

if TYPE_CHECKING:
    from cairn.data.profiling import QueryLink


@click.command(cls=CairnCommand)
@click.argument("source")
@click.option(
    "-o",
    "--output",
    default="profile.html",
    show_default=True,
    help="Where to write the HTML report (path or gs://).",
)
@click.option(
    "--time",
    "time_column",
    help="A time column: trends over time, and drift of each window against its history.",
)
@click.option(
    "--place",
    "place_column",
    help="A place column: a slice column for drift, and comparisons across places.",
)
@click.option(
    "--slice",
    "slice_columns",
    multiple=True,
    metavar="COLUMN",
    help="A column whose values are slices for drift (repeatable) [default: text columns "
    "with 2 to 20 values, at most five]. --slice none: only --place.",
)
@click.option(
    "--windows",
    type=click.IntRange(2, 100),
    default=6,
    show_default=True,
    help="How many equal time windows --time is cut into. Seasons are not modelled: with "
    "several years of data, make each window a whole number of years (3 for three years).",
)
@source_spec_options
def profile(
    source: str,
    output: str,
    time_column: str | None,
    place_column: str | None,
    slice_columns: tuple[str, ...],
    windows: int,
    fmt: str | None,
    table: str | None,
    query: str | None,
    delimiter: str | None,
    encoding: str | None,
) -> None:
    """Profile SOURCE (a CSV/Parquet/JSONL file or a database URL) into an HTML report.

    The report shows each column's type, missing share, distinct count, min/max and
    quantiles, histograms or top values, outliers and correlations. Given --time, it cuts
    the time range into --windows windows and compares each window with the earlier ones,
    for all rows and within each slice (each value of --place and of the slice columns),
    by PSI and KS; only changes that are both significant after a correction for the number
    of tests (Benjamini-Hochberg) and large (PSI >= 0.1) count as drift; a change of all
    rows that every slice repeats is one finding. A text --time column must hold ISO 8601
    times. How slices differ from each other is shown apart, not as drift. Each finding
    shows the `cairn data query` command that reproduces it. The report opens offline in
    any browser.
    """
    from cairn.data import Workspace, load_source
    from cairn.data.drift import DriftSettings
    from cairn.data.report_html import write_profile_report

    spec = build_source(source, fmt, table, query, delimiter, encoding)
    target = local_path(output)
    chosen: list[str] | None = list(slice_columns) or None
    if chosen is not None and [c.lower() for c in chosen] == ["none"]:
        chosen = []
    link = _link(source, spec.url is not None, table, query)
    with reported_errors(), progress_status("reading the source") as update, Workspace() as ws:
        relation = load_source(ws.con, spec)
        update("profiling")
        write_profile_report(
            ws,
            relation,
            target,
            time_column,
            place_column,
            title=f"Profile of {source}",
            slice_columns=chosen,
            drift_settings=DriftSettings(windows=windows),
            link=link,
        )
    click.echo(f"report: {target}")


def _link(source: str, database: bool, table: str | None, query: str | None) -> QueryLink | None:
    """How `cairn data query` reaches the same data (none for a --query source)."""
    from cairn.data.profiling import QueryLink
    from cairn.data.query import default_table_name, table_name_for

    if database:
        if not table or query:
            return None
        # The report is a file people share: never the database password in it.
        from sqlalchemy.engine import make_url

        shown = make_url(source).render_as_string(hide_password=True)
        return QueryLink((f"{shown}#{table}",), table_name_for(table.rsplit(".", 1)[-1]))
    return QueryLink((source,), default_table_name(source))
