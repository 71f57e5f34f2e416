"""`cairn operations cancel OPERATION`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options


@click.command(cls=CairnCommand)
@click.argument("operation")
@common_options
def cancel(operation: str, session: Session) -> None:
    """Ask operation OPERATION to stop (best effort; a finished one stays as it is)."""
    session.client.cancel_operation(operation)
    session.printer.status(f"Cancelled [{session.client.operation_name(operation)}].")
