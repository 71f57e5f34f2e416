"""`cairn data profile SOURCE`: an HTML report of what is in a dataset."""

from __future__ import annotations

import click

from cairn.cli.data._common import (
    build_source,
    local_path,
    progress_status,
    reported_errors,
    source_spec_options,
)
from cairn.cli.options import CairnCommand


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
    help="A time column: trends over time and drift between early and late rows.",
)
@click.option(
    "--place", "place_column", help="A place column: comparisons and drift across places."
)
@source_spec_options
def profile(
    source: str,
    output: str,
    time_column: str | None,
    place_column: str | None,
    fmt: str | None,
    table: str | None,
    query: str | None,
    delimiter: str | None,
    encoding: str | None,
) -> None:
    """Profile SOURCE (a CSV/Parquet/JSONL file or a database URL) into an HTML report.

    The report shows each column's type, missing share, distinct count, min/max and
    quantiles, histograms or top values, outliers, correlations and, given --time/--place,
    trends and drift (PSI, KS) between slices. It opens offline in any browser.
    """
    from cairn.data import Workspace, load_source
    from cairn.data.report_html import write_profile_report

    spec = build_source(source, fmt, table, query, delimiter, encoding)
    target = local_path(output)
    with reported_errors(), progress_status("reading the source") as update, Workspace() as ws:
        relation = load_source(ws.con, spec)
        update("profiling")
        write_profile_report(
            ws, relation, target, time_column, place_column, title=f"Profile of {source}"
        )
    click.echo(f"report: {target}")
