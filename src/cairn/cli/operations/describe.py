"""`cairn operations describe OPERATION`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options


@click.command(cls=CairnCommand)
@click.argument("operation")
@common_options
def describe(operation: str, session: Session) -> None:
    """Show operation OPERATION: its metadata, whether it is done, and its result or error."""
    session.printer.resource(session.client.get_operation(operation))
