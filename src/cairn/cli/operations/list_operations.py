"""`cairn operations list`."""

from __future__ import annotations

import itertools

import click

from cairn.cli.options import CairnCommand, Session, common_options
from cairn.cli.output import Column, basename_of, field

OPERATION_COLUMNS = [
    Column("NAME", basename_of("name")),
    Column("OPERATION_TYPE", field("metadata.operationType")),
    Column("DONE", lambda op: bool(op.get("done"))),
]


@click.command("list", cls=CairnCommand)
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many operations.")
@common_options
def list_operations(limit: int | None, session: Session) -> None:
    """List the project's operations: NAME, OPERATION_TYPE and DONE."""
    found = session.client.list_operations()
    session.printer.resources(itertools.islice(found, limit), OPERATION_COLUMNS)
