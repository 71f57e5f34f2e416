"""`cairn data clean SOURCE`: the common cleaning steps from the command line."""

from __future__ import annotations

import click

from cairn.cli.data._common import (
    build_source,
    console,
    local_path,
    progress_status,
    reported_errors,
    source_spec_options,
)
from cairn.cli.options import CairnCommand, GcloudChoice


@click.command(cls=CairnCommand)
@click.argument("source")
@click.option(
    "-o", "--output", required=True, help="Output file (.parquet, .csv or .jsonl; path or gs://)."
)
@click.option("--dedupe", is_flag=True, help="Drop rows identical to an earlier row.")
@click.option(
    "--drop-missing", multiple=True, metavar="COLUMN", help="Drop rows missing COLUMN (repeatable)."
)
@click.option(
    "--impute",
    multiple=True,
    metavar="COLUMN=STRATEGY",
    help="Fill COLUMN by mean, median, mode (repeatable).",
)
@click.option(
    "--spellings",
    multiple=True,
    metavar="COLUMN",
    help="Merge spellings of one value in COLUMN (case, spaces, punctuation).",
)
@click.option(
    "--units",
    multiple=True,
    metavar="COLUMN=UNIT",
    help="Convert mixed-unit text in COLUMN to numbers in UNIT, e.g. height=cm.",
)
@click.option(
    "--outliers",
    multiple=True,
    metavar="COLUMN",
    help="Treat outliers of numeric COLUMN (see --outlier-method/--outlier-action).",
)
@click.option(
    "--outlier-method", type=GcloudChoice(["iqr", "zscore"]), default="iqr", show_default=True
)
@click.option(
    "--outlier-action",
    type=GcloudChoice(["flag", "clip", "drop"]),
    default="flag",
    show_default=True,
)
@source_spec_options
def clean(
    source: str,
    output: str,
    dedupe: bool,
    drop_missing: tuple[str, ...],
    impute: tuple[str, ...],
    spellings: tuple[str, ...],
    units: tuple[str, ...],
    outliers: tuple[str, ...],
    outlier_method: str,
    outlier_action: str,
    fmt: str | None,
    table: str | None,
    query: str | None,
    delimiter: str | None,
    encoding: str | None,
) -> None:
    """Clean SOURCE and write the result to OUTPUT; each step reports rows before/after.

    Steps run in this order: --dedupe, --drop-missing, --impute, --spellings, --units,
    --outliers.
    """
    from cairn.data import Workspace, cleaning, load_source
    from cairn.data.sources import quote_identifier

    target = local_path(output)
    suffix = target.suffix.lstrip(".")
    formats = {"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER", "jsonl": "FORMAT json"}
    if suffix not in formats:
        raise click.BadParameter(
            "OUTPUT must end in .parquet, .csv or .jsonl.", param_hint="--output"
        )
    pairs = {}
    for option, values in (("--impute", impute), ("--units", units)):
        for value in values:
            if "=" not in value:
                raise click.BadParameter(f"{value!r}: write COLUMN=VALUE.", param_hint=option)
        pairs[option] = [tuple(v.split("=", 1)) for v in values]
    spec = build_source(source, fmt, table, query, delimiter, encoding)
    reports = []
    with reported_errors(), progress_status("reading the source") as update, Workspace() as ws:
        relation = load_source(ws.con, spec)
        if dedupe:
            update("dropping duplicates")
            relation, report = cleaning.drop_duplicates(ws, relation)
            reports.append(report)
        if drop_missing:
            update("dropping rows with missing values")
            relation, report = cleaning.drop_missing(ws, relation, list(drop_missing))
            reports.append(report)
        for column, strategy in pairs["--impute"]:
            update(f"imputing {column}")
            relation, report = cleaning.impute_missing(ws, relation, [column], strategy)
            reports.append(report)
        if spellings:
            update("merging spellings")
            relation, report = cleaning.normalize_spellings(ws, relation, list(spellings))
            reports.append(report)
        for column, unit in pairs["--units"]:
            update(f"converting {column} to {unit}")
            relation, report = cleaning.normalize_units(ws, relation, column, unit)
            reports.append(report)
        if outliers:
            update("treating outliers")
            relation, report = cleaning.handle_outliers(
                ws, relation, list(outliers), outlier_method, outlier_action
            )
            reports.append(report)
        target.parent.mkdir(parents=True, exist_ok=True)
        ws.con.execute(
            f"COPY (SELECT * FROM {quote_identifier(relation)}) TO '{target.as_posix()}' ({formats[suffix]})"
        )
    for report in reports:
        console.print(f"  {report.summary()}")
    click.echo(f"output: {target}")
