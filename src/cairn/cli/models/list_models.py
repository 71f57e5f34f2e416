"""`cairn models list`."""

from __future__ import annotations

import itertools

import click

from cairn.cli.options import CairnCommand, Session, common_options
from cairn.cli.output import Column, basename_of

MODEL_COLUMNS = [
    Column("NAME", basename_of("name")),
    Column("DEFAULT_VERSION_NAME", basename_of("defaultVersion.name")),
]


@click.command("list", cls=CairnCommand)
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many models.")
@click.option("--page-size", type=click.IntRange(1, 100), help="Models fetched per request.")
@common_options
def list_models(limit: int | None, page_size: int | None, session: Session) -> None:
    """List the project's models and their default versions."""
    found = session.client.list_models(page_size=page_size)
    session.printer.resources(itertools.islice(found, limit), MODEL_COLUMNS)
