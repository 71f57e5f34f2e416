"""`cairn data`: profile, clean, split and prepare datasets on this machine.

These commands run in-process (no server needed); each subcommand lives in its own module
and is imported only when used, so `cairn data --help` stays fast.
"""

from __future__ import annotations

import click

from cairn.cli.lazy import LazyCommand, LazyGroup

SUBCOMMANDS = {
    "prepare": LazyCommand(
        "cairn.cli.data.prepare",
        "prepare",
        "Run a recipe: join, clean, split, fit the preparation pipeline.",
    ),
    "profile": LazyCommand(
        "cairn.cli.data.profile",
        "profile",
        "Write an HTML report profiling a CSV/Parquet/JSONL/SQL source.",
    ),
    "split": LazyCommand(
        "cairn.cli.data.split", "split", "Split a source into train/validation/test files."
    ),
    "query": LazyCommand(
        "cairn.cli.data.query", "query", "Run DuckDB SQL over CSV/Parquet/JSONL/SQL sources."
    ),
    "clean": LazyCommand(
        "cairn.cli.data.clean",
        "clean",
        "Clean a source (duplicates, missing values, outliers, spellings, units).",
    ),
}


@click.group(cls=LazyGroup, lazy_commands=SUBCOMMANDS)
def data() -> None:
    """Profile, clean, split and prepare datasets (runs locally, no server needed).

    \b
    Examples:
      cairn data profile flights.csv --time time_hour --place origin -o profile.html
      cairn data clean raw.csv -o clean.parquet --dedupe --drop-missing price
      cairn data split clean.parquet -o splits/ --method stratified --label late
      cairn data prepare recipe.yaml            # the whole recipe, with report
      cairn data query sales.csv "SELECT city, avg(price) FROM sales GROUP BY 1"
    """
