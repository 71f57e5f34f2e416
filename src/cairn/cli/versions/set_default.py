"""`cairn versions set-default VERSION --model MODEL`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options


@click.command("set-default", cls=CairnCommand)
@click.argument("version")
@click.option("--model", required=True, help="Model the version belongs to.")
@common_options
def set_default(version: str, model: str, session: Session) -> None:
    """Make VERSION the version that predictions on model MODEL go to."""
    updated = session.client.set_default_version(model, version)
    session.printer.resource(updated)
