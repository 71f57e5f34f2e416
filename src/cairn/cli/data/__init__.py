"""`cairn data`: profile, clean, split and prepare datasets on this machine.

These commands run in-process (no server needed); each subcommand lives in its own module
and is imported only when used, so `cairn data --help` stays fast.
"""

from __future__ import annotations

import importlib

import click

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "prepare": (
        "cairn.cli.data.prepare",
        "Run a recipe: join, clean, split, fit the preparation pipeline.",
    ),
    "profile": (
        "cairn.cli.data.profile",
        "Write an HTML report profiling a CSV/Parquet/JSONL/SQL source.",
    ),
    "split": ("cairn.cli.data.split", "Split a source into train/validation/test files."),
    "clean": (
        "cairn.cli.data.clean",
        "Clean a source (duplicates, missing values, outliers, spellings, units).",
    ),
}


class _LazyDataGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        module_name, short_help = SUBCOMMANDS[cmd_name]
        if ctx.resilient_parsing:
            return click.Command(cmd_name, short_help=short_help)
        command: click.Command = getattr(importlib.import_module(module_name), cmd_name)
        return command


@click.group(cls=_LazyDataGroup)
def data() -> None:
    """Profile, clean, split and prepare datasets (runs locally, no server needed).

    \b
    Examples:
      cairn data profile flights.csv --time time_hour --place origin -o profile.html
      cairn data clean raw.csv -o clean.parquet --dedupe --drop-missing price
      cairn data split clean.parquet -o splits/ --method stratified --label late
      cairn data prepare recipe.yaml            # the whole recipe, with report
    """
