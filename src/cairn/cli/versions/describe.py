"""`cairn versions describe VERSION --model MODEL`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options


@click.command(cls=CairnCommand)
@click.argument("version")
@click.option("--model", required=True, help="Model the version belongs to.")
@common_options
def describe(version: str, model: str, session: Session) -> None:
    """Show version VERSION of model MODEL: state, artefact, scaling (YAML by default)."""
    session.printer.resource(session.client.get_version(model, version))
