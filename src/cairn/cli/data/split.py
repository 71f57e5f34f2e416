"""`cairn data split SOURCE`: train/validation/test files from one source."""

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
    "-o",
    "--output",
    required=True,
    help="Folder (or gs://BUCKET/PATH) for train/validation/test files.",
)
@click.option(
    "--method",
    type=GcloudChoice(["random", "stratified", "hash"]),
    default="random",
    show_default=True,
    help="random, stratified by --label, or by a hash of --key.",
)
@click.option(
    "--train",
    "train_share",
    type=float,
    default=0.8,
    show_default=True,
    help="Share of rows for training.",
)
@click.option(
    "--validation",
    "validation_share",
    type=float,
    default=0.1,
    show_default=True,
    help="Share for validation.",
)
@click.option(
    "--test", "test_share", type=float, default=0.1, show_default=True, help="Share for test."
)
@click.option("--label", help="Label column: stratify by it and report each split's class balance.")
@click.option("--key", help="Key column for --method hash: one key always lands in the same split.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for random and stratified splits."
)
@click.option(
    "--any-sizes", is_flag=True, help="Allow sizes other than train > validation >= test."
)
@click.option(
    "--output-format",
    type=GcloudChoice(["parquet", "csv", "jsonl"]),
    default="parquet",
    show_default=True,
)
@source_spec_options
def split(
    source: str,
    output: str,
    method: str,
    train_share: float,
    validation_share: float,
    test_share: float,
    label: str | None,
    key: str | None,
    seed: int,
    any_sizes: bool,
    output_format: str,
    fmt: str | None,
    table: str | None,
    query: str | None,
    delimiter: str | None,
    encoding: str | None,
) -> None:
    """Split SOURCE into OUTPUT/train, validation and test files (reproducible with --seed)."""
    from cairn.data import SplitFractions, Workspace, load_source
    from cairn.data import split as split_relation
    from cairn.data.sources import quote_identifier
    from cairn.data.split import SPLIT_COLUMN, SPLITS
    from cairn.data.writer import write_query

    spec = build_source(source, fmt, table, query, delimiter, encoding)
    target = local_path(output)
    with reported_errors(), progress_status("reading the source") as update, Workspace() as ws:
        fractions = SplitFractions.from_mapping(
            {"train": train_share, "validation": validation_share, "test": test_share},
            not any_sizes,
        )
        relation = load_source(ws.con, spec)
        update("splitting")
        relation, report = split_relation(ws, relation, fractions, method, label, key, seed)
        for name in SPLITS:
            update(f"writing {name}")
            path = target / f"{name}.{output_format}"
            write_query(
                ws.con,
                f"SELECT * EXCLUDE ({SPLIT_COLUMN}) FROM {quote_identifier(relation)} "
                f"WHERE {SPLIT_COLUMN} = '{name}'",
                path,
                "--output",
            )
            click.echo(f"{name}: {path} ({report.details['sizes'][name]} rows)")
    for split_name, shares in report.details.get("class_balance", {}).items():
        console.print(f"  {split_name} class balance: {shares}")
