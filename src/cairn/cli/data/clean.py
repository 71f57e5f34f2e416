"""`cairn data clean SOURCE`: the common cleaning steps from the command line."""

from __future__ import annotations

from typing import Any

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
    metavar="COLUMN[=UNIT]",
    help="Convert mixed-unit text in COLUMN (5 ft 3 in, 1,291 sqft, 95 m², 68 °F) to numbers "
    "in UNIT, e.g. height=cm or area=m2; without UNIT, the column's most frequent unit. "
    "Bare numbers take the unit whose written values are closest in size.",
)
@click.option(
    "--on-unparsed",
    type=GcloudChoice(["fail", "flag", "missing"]),
    default="fail",
    show_default=True,
    help="What --units does with values it cannot read: fail listing them, flag them "
    "(NULL plus a COLUMN_unparsed column), or missing (NULL).",
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
    on_unparsed: str,
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
    from cairn.data.writer import OutputFile

    target = local_path(output)
    with reported_errors():  # the suffix is checked before any work
        output_file = OutputFile(target, "--output")
    pairs = {}
    for value in impute:
        if "=" not in value:
            raise click.BadParameter(f"{value!r}: write COLUMN=VALUE.", param_hint="--impute")
    pairs["--impute"] = [tuple(v.split("=", 1)) for v in impute]
    conversions = [(v.split("=", 1) + [""])[:2] for v in units]
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
        for column, unit in conversions:
            update(f"converting {column} to {unit or 'its most frequent unit'}")
            relation, report = cleaning.normalize_units(
                ws, relation, column, unit or None, on_unparsed=on_unparsed
            )
            reports.append(report)
        if outliers:
            update("treating outliers")
            relation, report = cleaning.handle_outliers(
                ws, relation, list(outliers), outlier_method, outlier_action
            )
            reports.append(report)
        output_file.write(ws.con, f"SELECT * FROM {quote_identifier(relation)}")
    for report in reports:
        console.print(f"  {report.summary()}")
        if report.step.startswith("units"):
            console.print(f"    {units_note(report.details)}", highlight=False)
        if "warning" in report.details:
            console.print(f"  [yellow]warning:[/] {report.details['warning']}", highlight=False)
    click.echo(f"output: {target}")


def units_note(details: dict[str, Any]) -> str:
    """What a units step assumed, in one line: the target, bare numbers, the decimal mark."""
    bare = details["bare_numbers"]
    parts = [
        f"{details['column']} in {details['unit']}"
        + (" (its most frequent unit)" if details["unit_inferred"] else "")
    ]
    if bare["rows"]:
        parts.append(f"{bare['rows']} bare numbers read as {bare['read_as']} ({bare['because']})")
    parts.append(f"decimal mark {details['decimal_mark']!r}")
    parts.append(f"{details['unparsed_rows']} rows unparsed")
    return "; ".join(parts)
