"""`cairn models delete MODEL`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options, confirm


@click.command(cls=CairnCommand)
@click.argument("model")
@common_options
def delete(model: str, session: Session) -> None:
    """Delete model MODEL (delete its versions first)."""
    confirm(f"This will delete model [{model}]...")
    operation = session.client.delete_model(model)
    with session.printer.spinner(f"Deleting model [{model}]..."):
        session.client.wait_operation(operation)
    session.printer.status(f"Deleted model [{model}].")
