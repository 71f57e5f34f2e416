"""`cairn versions list --model MODEL`."""

from __future__ import annotations

import itertools

import click

from cairn.cli.options import CairnCommand, Session, common_options
from cairn.cli.output import Column, basename_of, field

VERSION_COLUMNS = [
    Column("NAME", basename_of("name")),
    Column("DEPLOYMENT_URI", field("deploymentUri")),
    Column("STATE", field("state")),
]


@click.command("list", cls=CairnCommand)
@click.option("--model", required=True, help="Model whose versions to list.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many versions.")
@common_options
def list_versions(model: str, limit: int | None, session: Session) -> None:
    """List the versions of model MODEL: NAME, DEPLOYMENT_URI and STATE."""
    found = session.client.list_versions(model)
    session.printer.resources(itertools.islice(found, limit), VERSION_COLUMNS)
