"""`cairn models describe MODEL`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options


@click.command(cls=CairnCommand)
@click.argument("model")
@common_options
def describe(model: str, session: Session) -> None:
    """Show model MODEL, including its default version (YAML by default)."""
    session.printer.resource(session.client.get_model(model))
