"""`cairn versions delete VERSION --model MODEL`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options, confirm


@click.command(cls=CairnCommand)
@click.argument("version")
@click.option("--model", required=True, help="Model the version belongs to.")
@common_options
def delete(version: str, model: str, session: Session) -> None:
    """Delete version VERSION of model MODEL (not the default unless it is the last one)."""
    confirm(f"This will delete version [{version}] of model [{model}]...")
    operation = session.client.delete_version(model, version)
    with session.printer.spinner(f"Deleting version [{version}]..."):
        session.client.wait_operation(operation)
    session.printer.status(f"Deleted version [{version}] of model [{model}].")
